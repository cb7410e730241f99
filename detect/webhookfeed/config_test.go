package webhookfeed

import (
	"strings"
	"testing"
	"time"

	"github.com/flapguard/flapguard/detect"
)

// 0 is the default, a negative value an error that names the field.
func TestConfigZeroIsDefaultNegativeIsError(t *testing.T) {
	c, err := Config{Notifier: &recorder{}, Token: "t"}.check()
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxSkew != defaultMaxSkew || c.TunnelLabel != "tunnel" || c.FiringState != detect.Down || c.ResolvedState != detect.Up {
		t.Errorf("defaults = %+v", c)
	}
	if _, err := New(Config{Notifier: &recorder{}, Token: "t", MaxSkew: -time.Second}); err == nil || !strings.Contains(err.Error(), "Config.MaxSkew is negative") {
		t.Errorf("MaxSkew < 0: err = %v", err)
	}
	if _, err := New(Config{Notifier: &recorder{}, Token: "t", FiringState: 9}); err == nil || !strings.Contains(err.Error(), "Config.FiringState") {
		t.Errorf("FiringState 9: err = %v", err)
	}
}
