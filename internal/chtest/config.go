package chtest

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"text/template"
)

// configTmpl is the server's minimal config: loopback only, no
// interserver port, small caches, UTC, logs and data under the
// server's directory.
var configTmpl = template.Must(template.New("config").Parse(`<?xml version="1.0"?>
<yandex>
  <logger>
    <level>warning</level>
    <log>{{.Dir}}/log/server.log</log>
    <errorlog>{{.Dir}}/log/err.log</errorlog>
    <size>10M</size>
    <count>1</count>
  </logger>
  <listen_host>127.0.0.1</listen_host>
  <tcp_port>{{.TCP}}</tcp_port>
  <http_port>{{.HTTP}}</http_port>
{{- if .TLS}}
  <tcp_port_secure>{{.TLS}}</tcp_port_secure>
  <openSSL>
    <server>
      <certificateFile>{{.Cert}}</certificateFile>
      <privateKeyFile>{{.Key}}</privateKeyFile>
      <verificationMode>none</verificationMode>
      <loadDefaultCAFile>false</loadDefaultCAFile>
      <cacheSessions>true</cacheSessions>
      <disableProtocols>sslv2,sslv3</disableProtocols>
      <preferServerCiphers>true</preferServerCiphers>
    </server>
  </openSSL>
{{- end}}
  <path>{{.Dir}}/data/</path>
  <tmp_path>{{.Dir}}/data/tmp/</tmp_path>
  <user_files_path>{{.Dir}}/data/user_files/</user_files_path>
  <format_schema_path>{{.Dir}}/data/format_schemas/</format_schema_path>
  <mark_cache_size>67108864</mark_cache_size>
  <uncompressed_cache_size>67108864</uncompressed_cache_size>
  <max_concurrent_queries>100</max_concurrent_queries>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mlock_executable>false</mlock_executable>
  <users_config>users.xml</users_config>
</yandex>
`))

var usersTmpl = template.Must(template.New("users").Parse(`<?xml version="1.0"?>
<yandex>
  <profiles>
    <default>
      <max_memory_usage>4000000000</max_memory_usage>
      <allow_experimental_low_cardinality_type>1</allow_experimental_low_cardinality_type>
    </default>
  </profiles>
  <users>
    <default>
      <password>{{.Password}}</password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
  </users>
  <quotas>
    <default>
      <interval>
        <duration>3600</duration>
        <queries>0</queries>
        <errors>0</errors>
        <result_rows>0</result_rows>
        <read_rows>0</read_rows>
        <execution_time>0</execution_time>
      </interval>
    </default>
  </quotas>
</yandex>
`))

// writeConfig writes config.xml and users.xml into the server's directory.
func (s *Server) writeConfig() error {
	for _, d := range []string{"log", "data"} {
		if err := os.MkdirAll(filepath.Join(s.dir, d), 0o755); err != nil {
			return fmt.Errorf("making %s: %w", d, err)
		}
	}
	esc := func(v string) string {
		var b bytes.Buffer
		xml.EscapeText(&b, []byte(v))
		return b.String()
	}
	var tlsPort int
	if s.tls() {
		tlsPort = s.tlsPort
	}
	files := []struct {
		name string
		tmpl *template.Template
		data any
	}{
		{"config.xml", configTmpl, map[string]any{
			"Dir": esc(s.dir), "TCP": s.tcpPort, "HTTP": s.httpPort, "TLS": tlsPort,
			"Cert": esc(s.opts.TLSCertFile), "Key": esc(s.opts.TLSKeyFile),
		}},
		{"users.xml", usersTmpl, map[string]any{"Password": esc(s.opts.Password)}},
	}
	for _, f := range files {
		var b bytes.Buffer
		if err := f.tmpl.Execute(&b, f.data); err != nil {
			return fmt.Errorf("rendering %s: %w", f.name, err)
		}
		if err := os.WriteFile(filepath.Join(s.dir, f.name), b.Bytes(), 0o644); err != nil {
			return fmt.Errorf("writing %s: %w", f.name, err)
		}
	}
	return nil
}
