//go:build natsserver

// This Example needs a NATS server: the one .ci/run starts on
// 127.0.0.1:4222, or the one at $FLAPGUARD_NATS_URL. Run it with
//
//	go test -tags natsserver -run Example ./detect/natsfeed

package natsfeed_test

import (
	"fmt"
	"os"

	"github.com/nats-io/nats.go"

	"github.com/flapguard/flapguard/detect"
	"github.com/flapguard/flapguard/detect/natsfeed"
)

// The host that sees a tunnel flap publishes the event once; every instance
// of the fleet subscribes with its pools as the Notifier. Here one
// connection does both, on a subject of its own, and the Notifier hands
// the events to the example through a channel. A malformed message is
// counted and dropped; it never reaches the Notifier.
func Example() {
	url := os.Getenv("FLAPGUARD_NATS_URL")
	if url == "" {
		url = "nats://127.0.0.1:4222"
	}
	nc, err := natsfeed.Connect(url, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer nc.Close()
	subject := "flapguard.example." + nats.NewInbox()[len("_INBOX."):] // not shared with another run

	events := make(chan detect.Event, 1)
	sub, err := natsfeed.Subscribe(nc, subject, detect.NotifierFunc(func(ev detect.Event) { events <- ev }), natsfeed.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sub.Unsubscribe()
	if err := nc.Flush(); err != nil { // the server knows the subscription before anything is published
		fmt.Println(err)
		return
	}

	_ = nc.Publish(subject, []byte(`{"v":1,"tunnel":"aws-1","state":"sideways"}`))
	if err := natsfeed.Publish(nc, subject, detect.Event{Tunnel: "aws-1", State: detect.Down, Source: "monitor"}); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("event:", <-events)
	st := sub.Stats() // messages are handled in order: the bad one came first
	fmt.Println("received:", st.Received, "events:", st.Events, "invalid:", st.Invalid)
	// Output:
	// event: tunnel aws-1 down (source nats:monitor)
	// received: 2 events: 1 invalid: 1
}
