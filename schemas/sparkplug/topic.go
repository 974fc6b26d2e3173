package sparkplug

import (
	"fmt"
	"strings"
)

// Namespace is the Sparkplug B topic namespace element.
const Namespace = "spBv1.0"

// Message types of the Sparkplug B topic namespace.
const (
	NBIRTH = "NBIRTH"
	NDEATH = "NDEATH"
	DBIRTH = "DBIRTH"
	DDEATH = "DDEATH"
	NDATA  = "NDATA"
	DDATA  = "DDATA"
	NCMD   = "NCMD"
	DCMD   = "DCMD"
	STATE  = "STATE"
)

// Topic is a parsed Sparkplug B topic: spBv1.0/group/TYPE/edge[/device],
// or spBv1.0/STATE/host for a host application's state.
type Topic struct {
	Group    string
	Type     string
	EdgeNode string
	Device   string
	// HostID is set for STATE topics only.
	HostID string
}

// ParseTopic parses a Sparkplug B topic name.
func ParseTopic(name string) (Topic, error) {
	parts := splitLevels(name, new([6]string))
	if parts[0] != Namespace {
		return Topic{}, fmt.Errorf("parsing topic %q: namespace is not %s", name, Namespace)
	}
	if len(parts) == 3 && parts[1] == STATE {
		if parts[2] == "" {
			return Topic{}, fmt.Errorf("parsing topic %q: empty host id", name)
		}
		return Topic{Type: STATE, HostID: parts[2]}, nil
	}
	if len(parts) < 4 || len(parts) > 5 {
		return Topic{}, fmt.Errorf("parsing topic %q: want %s/group/type/edge[/device]", name, Namespace)
	}
	t := Topic{Group: parts[1], Type: parts[2], EdgeNode: parts[3]}
	if len(parts) == 5 {
		t.Device = parts[4]
	}
	for _, p := range parts[1:] {
		if p == "" {
			return Topic{}, fmt.Errorf("parsing topic %q: empty level", name)
		}
	}
	device := false
	switch t.Type {
	case NBIRTH, NDEATH, NDATA, NCMD:
	case DBIRTH, DDEATH, DDATA, DCMD:
		device = true
	default:
		return Topic{}, fmt.Errorf("parsing topic %q: unknown message type %q", name, t.Type)
	}
	if device != (t.Device != "") {
		return Topic{}, fmt.Errorf("parsing topic %q: %s with %d levels", name, t.Type, len(parts))
	}
	return t, nil
}

// splitLevels splits a topic name at '/' into buf, without allocating;
// more than len(buf)-1 levels fill buf and the rest is dropped (the
// caller refuses that many anyway).
func splitLevels(name string, buf *[6]string) []string {
	n := 0
	for n < len(buf) {
		i := strings.IndexByte(name, '/')
		if i < 0 {
			buf[n] = name
			return buf[:n+1]
		}
		buf[n], name = name[:i], name[i+1:]
		n++
	}
	return buf[:]
}

// RebirthTopic is the NCMD topic of an edge node.
func RebirthTopic(group, edge string) string {
	return Namespace + "/" + group + "/" + NCMD + "/" + edge
}

// Message types boxed once, for decoded messages.
var (
	boxedNBIRTH, boxedNDEATH, boxedDBIRTH, boxedDDEATH any = NBIRTH, NDEATH, DBIRTH, DDEATH
	boxedNDATA, boxedDDATA, boxedNCMD, boxedDCMD       any = NDATA, DDATA, NCMD, DCMD
)

// boxedType returns a message type as an any without allocating.
func boxedType(t string) any {
	switch t {
	case NBIRTH:
		return boxedNBIRTH
	case NDEATH:
		return boxedNDEATH
	case DBIRTH:
		return boxedDBIRTH
	case DDEATH:
		return boxedDDEATH
	case NDATA:
		return boxedNDATA
	case DDATA:
		return boxedDDATA
	case NCMD:
		return boxedNCMD
	case DCMD:
		return boxedDCMD
	}
	return t
}
