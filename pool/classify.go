package pool

import "github.com/flapguard/flapguard/detect"

const detectLostUnsent = detect.LostUnsent

// classify asks Config.Classifier, then the driver's classifier, then
// detect.Default. A classifier that panics has no opinion: a user's
// override must not take the pool down.
func (p *Pool) classify(err error) detect.Verdict {
	for _, c := range [...]detect.Classifier{p.cfg.Classifier, p.drv.Classifier} {
		if c == nil {
			continue
		}
		if v := safeClassify(c, err); v != detect.Continue {
			return v
		}
	}
	return detect.Default.Classify(err)
}

func safeClassify(c detect.Classifier, err error) (v detect.Verdict) {
	defer func() {
		if recover() != nil {
			v = detect.Continue
		}
	}()
	return c.Classify(err)
}
