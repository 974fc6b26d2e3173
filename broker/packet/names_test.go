package packet

import (
	"strings"
	"testing"
)

func TestValidHelpers(t *testing.T) {
	cases := []struct {
		name       string
		in         string
		str, topic bool
	}{
		{"ascii", "a/b/c", true, true},
		{"long ascii", strings.Repeat("abcdefgh/", 20), true, true},
		{"empty", "", true, false},
		{"plus", "a/+/c", true, false},
		{"hash late in a long name", strings.Repeat("x", 17) + "#", true, false},
		{"nul late in a long name", strings.Repeat("x", 17) + "\x00", false, false},
		{"multibyte", "température/é", true, true},
		{"surrogate", "a\xed\xbf\xbf", false, false},
		{"truncated rune", "a\xe2\x82", false, false},
		{"over 65535 bytes", strings.Repeat("a", 65536), false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := ValidString([]byte(tc.in)); got != tc.str {
				t.Errorf("ValidString = %v, want %v", got, tc.str)
			}
			if got := ValidTopicName([]byte(tc.in)); got != tc.topic {
				t.Errorf("ValidTopicName = %v, want %v", got, tc.topic)
			}
		})
	}
}

func TestNames(t *testing.T) {
	cases := []struct{ got, want string }{
		{PUBLISH.String(), "PUBLISH"},
		{AUTH.String(), "AUTH"},
		{Type(16).String(), "Type(16)"},
		{QuotaExceeded.String(), "quota exceeded"},
		{Success.String(), "success"},
		{ReasonCode(0x03).String(), "reason code 0x3"},
	}
	for _, tc := range cases {
		t.Run(tc.want, func(t *testing.T) {
			if tc.got != tc.want {
				t.Fatalf("got %q, want %q", tc.got, tc.want)
			}
		})
	}
	if !MalformedPacket.IsError() || GrantedQoS2.IsError() {
		t.Fatal("IsError wrong")
	}
}
