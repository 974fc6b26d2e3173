package packet

import (
	"bytes"
	"testing"
	"unsafe"
)

// TestSteadyStateAllocs makes the zero-allocation guarantees fail a plain
// `go test`, not only show up in benchmarks.
func TestSteadyStateAllocs(t *testing.T) {
	pub := &Publish{QoS: 1, PacketID: 1, Topic: b("a/b/c"), Payload: bytes.Repeat(b("x"), 100),
		Props: Properties{Present: PropMessageExpiry, MessageExpiry: 5, User: []UserProperty{{Name: b("n"), Value: b("v")}}}}
	mixed := []Packet{pub, &Ack{Kind: PUBACK, PacketID: 1}, &Pingreq{},
		&Subscribe{PacketID: 2, Subs: []Subscription{{Filter: b("a/#"), QoS: 1}}},
		&Unsubscribe{PacketID: 3, Filters: [][]byte{b("a/#")}}, &Disconnect{ReasonCode: ServerBusy}}
	for _, version := range []byte{Version311, Version5} {
		t.Run("Reader/"+vname(version), func(t *testing.T) {
			var data []byte
			for range 200 {
				data = append(data, stream(t, version, mixed...)...)
			}
			r := NewReader(&loopReader{data: data}, 0)
			r.SetVersion(version)
			for range 2 * len(mixed) { // warm up: structs and capacities
				if _, err := r.ReadPacket(); err != nil {
					t.Fatal(err)
				}
			}
			allocs := testing.AllocsPerRun(5000, func() {
				if _, err := r.ReadPacket(); err != nil {
					t.Fatal(err)
				}
			})
			if allocs != 0 {
				t.Fatalf("%v allocations per packet, want 0", allocs)
			}
		})
		t.Run("Append/"+vname(version), func(t *testing.T) {
			dst := make([]byte, 0, 512)
			allocs := testing.AllocsPerRun(1000, func() {
				for _, p := range mixed {
					var err error
					if dst, err = Append(dst[:0], p, version); err != nil {
						t.Fatal(err)
					}
					_ = Size(p, version)
				}
			})
			if allocs != 0 {
				t.Fatalf("%v allocations, want 0", allocs)
			}
		})
	}
}

// TestIdleFootprint bounds what an idle connection's Reader holds: the
// Reader itself plus its reused PUBLISH, no read buffer.
func TestIdleFootprint(t *testing.T) {
	r := NewReader(bytes.NewReader(stream(t, Version311, &Publish{Topic: b("t"), Payload: make([]byte, 10000)})), 0)
	r.SetVersion(Version311)
	if _, err := r.ReadPacket(); err != nil {
		t.Fatal(err)
	}
	r.Release()
	if r.buf != nil || r.bufp != nil {
		t.Fatal("idle Reader holds a buffer")
	}
	held := unsafe.Sizeof(*r) + unsafe.Sizeof(Publish{})
	t.Logf("idle Reader %d bytes + reused Publish %d bytes", unsafe.Sizeof(*r), unsafe.Sizeof(Publish{}))
	if held > 1024 {
		t.Fatalf("idle Reader holds %d bytes, want <= 1024", held)
	}
}
