package clickhouse

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/chtest"
	"github.com/sluicehq/sluice/sinks/internal/testpki"
)

// TestTLS writes over the server's TLS native port with the test CA, and
// checks that a server the CA did not sign is refused.
func TestTLS(t *testing.T) {
	pki := testpki.New(t)
	srv := chtest.Start(t, chtest.Options{TLSCertFile: pki.ServerCertFile, TLSKeyFile: pki.ServerKeyFile, Password: "s3cret"})
	db, name := makeTable(t, srv, "(v Int32) ENGINE = MergeTree ORDER BY v")
	t.Setenv("SLUICE_TEST_CH_PASSWORD", "s3cret")
	tests := []struct {
		name    string
		tls     TLSConfig
		wantErr string
	}{
		{name: "trusted CA", tls: TLSConfig{Enabled: true, CAFile: pki.CAFile}},
		{name: "unknown CA", tls: TLSConfig{Enabled: true}, wantErr: "certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(Config{
				Addresses: []string{srv.TLSAddr()}, Database: db, Table: name,
				Password: "${SLUICE_TEST_CH_PASSWORD}", TLS: tt.tls, DialTimeout: 5 * time.Second,
			}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err = s.Connect(ctx)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Connect = %v, want an error about the %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Connect = %v", err)
			}
			if err := write(t, s, recs(`{"v":7}`)); err != nil {
				t.Fatal(err)
			}
			if got := rows(t, srv, "SELECT v FROM "+db+"."+name); !slices.Equal(got, []string{"7"}) {
				t.Fatalf("rows = %q", got)
			}
		})
	}
}
