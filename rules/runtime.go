package rules

import (
	"fmt"
	"strconv"

	"github.com/sluicehq/sluice/broker/topic"
)

// runtimeMessage formats a runtime error for a dead-letter record:
// `rule "name" field: message (l:c)`, noting an undecodable payload since
// that is the usual cause of payload errors.
func runtimeMessage(rule, field string, err error, e *env) string {
	msg, line, col := exprMessage(err)
	s := "rule " + strconv.Quote(rule) + " " + field + ": " + msg
	if line > 0 {
		s += " (" + strconv.Itoa(line) + ":" + strconv.Itoa(col) + ")"
	}
	if e.in != nil && e.in.DecodeErr != nil && e.have&(1<<payloadVar) != 0 {
		s += " (payload not decoded: " + e.in.DecodeErr.Error() + ")"
	}
	return s
}

// checkTopicName refuses a rendered republish topic that is not a valid
// MQTT topic name (empty, wildcards, NUL, invalid UTF-8).
func checkTopicName(name string) error {
	if !topic.ValidName([]byte(name)) {
		return fmt.Errorf("rendered topic %q is not a valid MQTT topic name", name)
	}
	return nil
}

// typeName names v's type for messages.
func typeName(v any) string {
	if v == nil {
		return "nil"
	}
	return fmt.Sprintf("%T", v)
}

// Text renders an expression value for people: strings quoted, anything
// else as JSON.
func Text(v any) string { return textOf(v) }

// textOf renders a value for traces.
func textOf(v any) string {
	if s, ok := v.(string); ok {
		return strconv.Quote(s)
	}
	b, err := appendJSON(nil, v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
