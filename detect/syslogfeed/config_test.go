package syslogfeed

import (
	"strings"
	"testing"
	"time"

	"github.com/flapguard/flapguard/detect"
)

// 0 is the default, a negative value an error that names the field.
func TestConfigZeroIsDefaultNegativeIsError(t *testing.T) {
	base := Config{Notifier: detect.NotifierFunc(func(detect.Event) {}), Rules: YamahaRTX().Rules}
	got, err := base.check()
	if err != nil {
		t.Fatal(err)
	}
	if got.MaxLine != DefaultMaxLine || got.MaxConns != defaultMaxConns || got.QueueLen != defaultQueueLen || got.IdleTimeout != defaultIdleTimeout {
		t.Errorf("defaults = %+v", got)
	}
	for field, set := range map[string]func(*Config){
		"MaxLine":     func(c *Config) { c.MaxLine = -1 },
		"MaxConns":    func(c *Config) { c.MaxConns = -1 },
		"QueueLen":    func(c *Config) { c.QueueLen = -1 },
		"IdleTimeout": func(c *Config) { c.IdleTimeout = -time.Second },
	} {
		c := base
		set(&c)
		if _, err := New(c); err == nil || !strings.Contains(err.Error(), "Config."+field+" is negative") {
			t.Errorf("%s < 0: err = %v, want it named", field, err)
		}
	}
	if _, err := NewParser(YamahaRTX().Rules, -1); err == nil || !strings.Contains(err.Error(), "maxLine is negative") {
		t.Errorf("NewParser(maxLine -1): err = %v", err)
	}
}
