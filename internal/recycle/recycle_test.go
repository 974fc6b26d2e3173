package recycle

import (
	"reflect"
	"testing"
)

func same(a, b any) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

func TestMapsReuseByPosition(t *testing.T) {
	var m Maps
	a, b := m.Next(1), m.Next(20)
	a["x"], b["y"] = 1, 2
	if m.Used() != 2 {
		t.Fatalf("Used = %d, want 2", m.Used())
	}
	m.Reset(64)
	if len(a) != 0 || len(b) != 0 {
		t.Fatalf("maps not cleared: %v %v", a, b)
	}
	if a2, b2 := m.Next(1), m.Next(20); !same(a, a2) || !same(b, b2) {
		t.Error("the second payload did not get the first one's maps, in order")
	}
	if c := m.Next(3); c == nil || len(c) != 0 {
		t.Errorf("a third map = %v, want a new empty map", c)
	}
}

func TestMapsBounds(t *testing.T) {
	m := Maps{Keep: 2}
	big := m.Next(0)
	for i := range 10 {
		big[string(rune('a'+i))] = i
	}
	small := m.Next(0)
	extra := m.Next(0) // past Keep: not kept
	extra["e"] = 1
	m.Reset(5)
	if len(big) != 10 {
		t.Error("a map past maxEntries was cleared instead of dropped")
	}
	if got := m.Next(0); same(got, big) || len(got) != 0 {
		t.Error("a map past maxEntries was handed out again")
	}
	if got := m.Next(0); !same(got, small) {
		t.Error("the small map was not reused")
	}
	if got := m.Next(0); same(got, extra) {
		t.Error("a map past Keep was reused")
	}
}

func TestSlabs(t *testing.T) {
	var s Slabs[*int]
	one := 1
	a := s.Next()
	if cap(a) != 16 || len(a) != 0 {
		t.Fatalf("slab len %d cap %d, want 0 and 16", len(a), cap(a))
	}
	a = append(a, &one)
	s.Reset(true)
	if a[0] != nil {
		t.Error("Reset(true) left a pointer in the slab")
	}
	if b := s.Next(); &b[:1][0] != &a[0] {
		t.Error("the slab was not reused")
	}
	k := Slabs[int]{Size: 4, Keep: 1}
	first, second := k.Next(), k.Next()
	k.Reset(false)
	if got := k.Next(); cap(got) != 4 || &got[:1][0] != &first[:1][0] {
		t.Error("the kept slab was not reused")
	}
	if got := k.Next(); &got[:1][0] == &second[:1][0] {
		t.Error("a slab past Keep was reused")
	}
}
