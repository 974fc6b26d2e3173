package secret

import "testing"

func TestExpand(t *testing.T) {
	env := map[string]string{"TOKEN": "s3cr3t", "EMPTY": "", "A_1": "x"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	tests := []struct {
		name, in, want string
		wantErr        bool
	}{
		{name: "plain", in: "Bearer abc", want: "Bearer abc"},
		{name: "one variable", in: "Bearer ${TOKEN}", want: "Bearer s3cr3t"},
		{name: "two variables", in: "${TOKEN}:${A_1}", want: "s3cr3t:x"},
		{name: "empty variable", in: "[${EMPTY}]", want: "[]"},
		{name: "escaped dollar", in: "$${TOKEN}", want: "${TOKEN}"},
		{name: "lone dollar kept", in: "cost $5 $", want: "cost $5 $"},
		{name: "unset variable", in: "${NOPE}", wantErr: true},
		{name: "unterminated", in: "${TOKEN", wantErr: true},
		{name: "bad name", in: "${1X}", wantErr: true},
		{name: "empty name", in: "${}", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Expand(tt.in, lookup)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Expand(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if err == nil && got != tt.want {
				t.Fatalf("Expand(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if cerr := Check(tt.in); (cerr != nil) != (tt.wantErr && tt.name != "unset variable") {
				t.Fatalf("Check(%q) = %v", tt.in, cerr)
			}
		})
	}
}
