// Package snse2e runs detect/snsfeed against a real SNS implementation on
// 127.0.0.1: GoAws (github.com/Admiral-Piett/goaws), in-process. It is a
// module of its own, outside go.work, so that the library never depends on
// GoAws and the workspace's dependency versions stay as they are:
//
//	cd internal/snse2e && GOWORK=off go test -race -count=1 ./...
//
// The package has no code besides its test.
package snse2e
