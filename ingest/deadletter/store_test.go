package deadletter

import (
	"os"
	"path/filepath"
	"testing"
)

func TestStore(t *testing.T) {
	t.Run("add list get replay survive reopen", func(t *testing.T) {
		dir := t.TempDir()
		s, err := Open(dir, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3; i++ {
			if err := s.Add(&Entry{Rule: "r", Sink: "k", Topic: "a/b", Payload: []byte{byte(i)}, Error: "boom", Attempts: i}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.MarkReplayed(2); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		s, err = Open(dir, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		all, err := s.List(0, 10, false)
		if err != nil || len(all) != 3 {
			t.Fatalf("List = %d entries, %v; want 3", len(all), err)
		}
		for i, e := range all {
			if e.ID != uint64(i+1) || e.Payload[0] != byte(i) || e.Attempts != i || e.Error != "boom" {
				t.Errorf("entry %d = %+v", i, e)
			}
		}
		pending, _ := s.List(0, 10, true)
		if len(pending) != 2 || pending[0].ID != 1 || pending[1].ID != 3 {
			t.Errorf("pending = %v, want ids 1 and 3", pending)
		}
		e, err := s.Get(2)
		if err != nil || !e.Replayed {
			t.Errorf("Get(2) = %+v, %v; want replayed", e, err)
		}
		if _, err := s.Get(9); err != ErrNotFound {
			t.Errorf("Get(9) err = %v, want ErrNotFound", err)
		}
		if err := s.Add(&Entry{Rule: "r"}); err != nil {
			t.Fatal(err)
		}
		if e, _ := s.List(3, 10, false); len(e) != 1 || e[0].ID != 4 {
			t.Errorf("id after reopen = %v, want 4", e)
		}
	})
	t.Run("torn tail is truncated", func(t *testing.T) {
		dir := t.TempDir()
		s, err := Open(dir, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		s.Add(&Entry{Rule: "a"}, &Entry{Rule: "b"})
		s.Close()
		p := filepath.Join(dir, "entries.log")
		fi, _ := os.Stat(p)
		if err := os.Truncate(p, fi.Size()-3); err != nil {
			t.Fatal(err)
		}
		s, err = Open(dir, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		all, _ := s.List(0, 10, false)
		if len(all) != 1 || all[0].Rule != "a" {
			t.Fatalf("after torn tail: %v, want only entry a", all)
		}
		if err := s.Add(&Entry{Rule: "c"}); err != nil {
			t.Fatal(err)
		}
		if all, _ := s.List(0, 10, false); len(all) != 2 || all[1].Rule != "c" || all[1].ID != 2 {
			t.Fatalf("append after recovery: %+v", all)
		}
	})
	t.Run("full store refuses", func(t *testing.T) {
		s, err := Open(t.TempDir(), 300, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		big := &Entry{Payload: make([]byte, 400)}
		if err := s.Add(big); err != ErrFull {
			t.Fatalf("Add over limit = %v, want ErrFull", err)
		}
		if total, _ := s.Len(); total != 0 {
			t.Fatalf("refused entry was stored")
		}
	})
}
