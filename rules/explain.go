package rules

import "github.com/sluicehq/sluice/ingest"

// Outcome is what one rule did with one message.
type Outcome string

// Outcomes of a Decision.
const (
	// OutcomeUnmatched: none of the rule's topic filters matches the
	// topic; the rule was not evaluated.
	OutcomeUnmatched Outcome = "unmatched"
	// OutcomeFiltered: the topic matched and `when` was false.
	OutcomeFiltered Outcome = "filtered"
	// OutcomeRouted: the rule produced outputs for its targets.
	OutcomeRouted Outcome = "routed"
	// OutcomeError: evaluating the rule failed; per on_error the message
	// went to the dead-letter store (outputs with Err) or was skipped.
	OutcomeError Outcome = "error"
)

// Results of `when` in a Decision.
const (
	WhenNone  = ""      // the rule has no when, or it was not reached
	WhenTrue  = "true"  // when held
	WhenFalse = "false" // when did not hold
	WhenError = "error" // when failed or was not a boolean
)

// Decision is one rule's decision on one message: its Trace classified
// for people (the live tap, tools).
type Decision struct {
	Trace
	// Outcome summarises what the rule did.
	Outcome Outcome
	// WhenResult is the `when` condition's result: WhenNone, WhenTrue,
	// WhenFalse or WhenError.
	WhenResult string
}

// Decide explains in rule by rule, like Explain, and classifies each
// rule's trace. It does not count metrics and is not for the hot path.
func (e *Engine) Decide(in *ingest.Input) []Decision {
	if in == nil || in.Msg == nil {
		return nil
	}
	traces := e.Explain(in)
	out := make([]Decision, len(traces))
	for i, tr := range traces {
		out[i] = classify(e.rules[i], tr)
	}
	return out
}

// Decide explains in with the active rule set (see Engine.Decide).
func (h *Holder) Decide(in *ingest.Input) []Decision { return h.cur.Load().Decide(in) }

// classify derives the outcome and the when result from what eval
// recorded in tr: lets are recorded only when they succeed, When only
// once the condition ran.
func classify(r *rule, tr Trace) Decision {
	d := Decision{Trace: tr}
	if tr.Filter == "" {
		d.Outcome = OutcomeUnmatched
		return d
	}
	if r.when != nil {
		switch {
		case tr.When == WhenTrue:
			d.WhenResult = WhenTrue
		case tr.When == WhenFalse:
			d.WhenResult = WhenFalse
		case tr.When != "":
			d.WhenResult = WhenError // a value, but not a boolean
		case tr.Err != "" && len(tr.Lets) == len(r.lets):
			d.WhenResult = WhenError // every let ran, so the condition failed
		}
	}
	switch {
	case tr.Err != "":
		d.Outcome = OutcomeError
	case tr.Passed:
		d.Outcome = OutcomeRouted
	default:
		d.Outcome = OutcomeFiltered
	}
	return d
}
