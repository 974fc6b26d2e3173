package diskio

import (
	"os"
	"path/filepath"
	"testing"
)

func TestPreallocateKeepsLengthAndSyncs(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	Preallocate(f, 1<<20)
	if _, err := f.Write([]byte("record")); err != nil {
		t.Fatal(err)
	}
	if err := SyncData(f); err != nil {
		t.Fatalf("SyncData: %v", err)
	}
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != int64(len("record")) {
		t.Fatalf("length %d after preallocating and writing 6 bytes, want 6", st.Size())
	}
}
