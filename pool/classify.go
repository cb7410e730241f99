package pool

import "github.com/flapguard/flapguard/detect"

// classify asks Config.Classifier, then the driver's classifier, then the
// generic rules (detect.Classify). A classifier that panics has no opinion:
// a user's override must not take the pool down.
func (p *Pool) classify(err error) detect.Verdict {
	return detect.Classify(err, p.cfg.Classifier, p.drv.Classifier)
}
