package webhook

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// placeholder is replaced by a record's topic in the URL.
const placeholder = "{topic}"

// urlTemplate is the configured URL, split at its placeholders once, when
// the sink is built.
type urlTemplate struct {
	// parts alternate literal text and placeholders: parts[0] {topic}
	// parts[1] {topic} ... parts[n]. With no placeholder, parts has one
	// element and topics are appended to the path.
	parts []string
	// inQuery[i] says placeholder i is in the query (else in the path).
	inQuery []bool
	// path and query split a placeholder-free URL for appending.
	path, query string
}

// compileURL checks raw and splits it. The placeholder may appear only in
// the path or the query, so a record cannot choose the host it goes to.
func compileURL(raw string) (*urlTemplate, error) {
	const marker = "sluice-topic-placeholder"
	u, err := url.Parse(strings.ReplaceAll(raw, placeholder, marker))
	if err != nil {
		return nil, fmt.Errorf("parsing url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("url scheme must be http or https, not %q", u.Scheme)
	}
	if u.Host == "" {
		return nil, errors.New("url has no host")
	}
	if strings.Contains(u.Host, marker) || strings.Contains(u.User.String(), marker) {
		return nil, errors.New("{topic} may appear only in the url's path or query")
	}
	if u.Fragment != "" {
		return nil, errors.New("url must not have a fragment")
	}
	t := &urlTemplate{parts: strings.Split(raw, placeholder)}
	q := strings.IndexByte(raw, '?')
	pos := 0
	for _, p := range t.parts[:len(t.parts)-1] {
		pos += len(p)
		t.inQuery = append(t.inQuery, q >= 0 && pos > q)
		pos += len(placeholder)
	}
	if len(t.parts) == 1 {
		t.path, t.query = raw, ""
		if q >= 0 {
			t.path, t.query = raw[:q], raw[q:]
		}
		t.path = strings.TrimRight(t.path, "/")
	}
	return t, nil
}

// render returns the URL for topic.
func (t *urlTemplate) render(topic string) (string, error) {
	if len(t.parts) == 1 {
		if topic == "" {
			return t.parts[0], nil
		}
		p, err := escapePath(topic)
		if err != nil {
			return "", err
		}
		return t.path + "/" + p + t.query, nil
	}
	var b strings.Builder
	for i, lit := range t.parts {
		b.WriteString(lit)
		if i == len(t.inQuery) {
			break
		}
		if t.inQuery[i] {
			b.WriteString(url.QueryEscape(topic))
			continue
		}
		p, err := escapePath(topic)
		if err != nil {
			return "", err
		}
		b.WriteString(p)
	}
	return b.String(), nil
}

// escapePath escapes each '/'-separated level of topic for a URL path.
// "." and ".." levels are refused: they would move up the receiver's path.
func escapePath(topic string) (string, error) {
	levels := strings.Split(topic, "/")
	for i, l := range levels {
		if l == "." || l == ".." {
			return "", fmt.Errorf("topic %q has a %q level, which cannot go in a URL path", topic, l)
		}
		levels[i] = url.PathEscape(l)
	}
	return strings.Join(levels, "/"), nil
}
