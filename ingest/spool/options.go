package spool

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/sluicehq/sluice/internal/diskio"
)

// Policy names what Append does when the spool holds Options.MaxBytes.
type Policy string

const (
	// PolicyBlock makes Append wait until retention frees space (a cursor
	// advances past a segment) or its context ends. The pipeline turns that
	// wait into MQTT backpressure (0x97 Quota exceeded).
	PolicyBlock Policy = "block"
	// PolicyDropOldest deletes the oldest segment even if cursors have not
	// read it. Each cursor that loses unread records jumps forward and the
	// loss is reported through Options.OnDrop with reason ReasonSpoolFull.
	PolicyDropOldest Policy = "drop_oldest"
)

// Drop reasons passed to Options.OnDrop.
const (
	// ReasonSpoolFull is reported when PolicyDropOldest deleted records a
	// cursor had not read yet.
	ReasonSpoolFull = "spool_full"
	// ReasonCorrupt is reported when a sealed segment turned out to be
	// unreadable (bad CRC, short file) and a cursor skipped the rest of it.
	ReasonCorrupt = "corrupt"
)

// Options configures a Spool. The zero value is usable: every zero field
// takes the default stated on it.
type Options struct {
	// SegmentBytes is the size at which the active segment is sealed and a
	// new one started. Default: 64 MiB, or MaxBytes/8 when that is smaller.
	SegmentBytes int64
	// MaxBytes bounds the bytes of all segment files plus queued appends.
	// Default: 1 GiB.
	MaxBytes int64
	// Policy is what happens when MaxBytes is reached. Default: PolicyBlock.
	Policy Policy
	// MaxRecordBytes is the largest record Append accepts. Default: 16 MiB,
	// or what fits in one segment when that is smaller. It cannot exceed
	// 256 MiB (the MQTT maximum packet size).
	MaxRecordBytes int
	// QueueBytes bounds the append queue between callers and the committer
	// (framed bytes of records not yet durable: data plus 8 bytes each).
	// Append blocks while it is full.
	// Default: 8 MiB, or MaxBytes/8 when that is smaller.
	QueueBytes int
	// CommitInterval is the longest a batch stays open: the committer keeps
	// writing queued records into the batch until it finds the queue empty,
	// the batch reaches CommitBytes, or CommitInterval has passed since the
	// batch began, and then fsyncs once. Default: 2ms.
	CommitInterval time.Duration
	// CommitBytes closes a batch once it holds this many bytes.
	// Default: 1 MiB.
	CommitBytes int
	// CheckpointInterval is how often acknowledged cursor positions are
	// persisted and fully consumed segments deleted. Default: 100ms.
	CheckpointInterval time.Duration
	// MaxInflight bounds records a cursor has delivered but not yet seen
	// acknowledged; Next blocks beyond it. Default: 65536.
	MaxInflight int
	// OnDrop, if set, is called once per cursor and event when records are
	// lost to that cursor, with the number of records and the reason
	// (ReasonSpoolFull, ReasonCorrupt). It is called with no spool lock held
	// but from the spool's own goroutines: it must not block.
	OnDrop func(cursor string, records uint64, reason string)
	// OnDropRecord, if set, is called for every record PolicyDropOldest
	// deletes before a cursor read it, with the record's offset and data (valid only
	// during the call), before OnDrop reports the count. It runs on the
	// committer goroutine with no spool lock held: keep it short.
	OnDropRecord func(cursor string, offset uint64, data []byte, reason string)
	// Logger receives recovery and error reports. Default: a logger that
	// discards everything.
	Logger *slog.Logger

	// syncFile replaces diskio.SyncData in tests (fault injection).
	syncFile func(*os.File) error
}

const (
	defaultSegmentBytes       = 64 << 20
	defaultMaxBytes           = 1 << 30
	defaultMaxRecordBytes     = 16 << 20
	hardMaxRecordBytes        = 256 << 20
	defaultQueueBytes         = 8 << 20
	defaultCommitInterval     = 2 * time.Millisecond
	defaultCommitBytes        = 1 << 20
	defaultCheckpointInterval = 100 * time.Millisecond
	defaultMaxInflight        = 1 << 16
	minSegmentBytes           = 4 << 10
)

// withDefaults fills zero fields and validates the result, reporting every
// problem at once.
func (o Options) withDefaults() (Options, error) {
	var errs []error
	if o.MaxBytes == 0 {
		o.MaxBytes = defaultMaxBytes
	}
	if o.SegmentBytes == 0 {
		o.SegmentBytes = min(int64(defaultSegmentBytes), o.MaxBytes/8)
		o.SegmentBytes = max(o.SegmentBytes, minSegmentBytes)
	}
	if o.Policy == "" {
		o.Policy = PolicyBlock
	}
	if o.MaxRecordBytes == 0 {
		o.MaxRecordBytes = int(min(defaultMaxRecordBytes, o.SegmentBytes-segHeaderSize-frameOverhead))
	}
	if o.QueueBytes == 0 {
		o.QueueBytes = int(min(defaultQueueBytes, o.MaxBytes/8))
	}
	if o.CommitInterval == 0 {
		o.CommitInterval = defaultCommitInterval
	}
	if o.CommitBytes == 0 {
		o.CommitBytes = defaultCommitBytes
	}
	if o.CheckpointInterval == 0 {
		o.CheckpointInterval = defaultCheckpointInterval
	}
	if o.MaxInflight == 0 {
		o.MaxInflight = defaultMaxInflight
	}
	if o.syncFile == nil {
		o.syncFile = diskio.SyncData
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}

	if o.SegmentBytes < minSegmentBytes {
		errs = append(errs, fmt.Errorf("segment_bytes: %d is below the minimum %d", o.SegmentBytes, minSegmentBytes))
	}
	if o.MaxBytes < 2*o.SegmentBytes {
		errs = append(errs, fmt.Errorf("max_bytes: %d must be at least twice segment_bytes (%d)", o.MaxBytes, o.SegmentBytes))
	}
	if o.Policy != PolicyBlock && o.Policy != PolicyDropOldest {
		errs = append(errs, fmt.Errorf("policy: unknown policy %q (want %q or %q)", o.Policy, PolicyBlock, PolicyDropOldest))
	}
	if o.MaxRecordBytes < 0 || o.MaxRecordBytes > hardMaxRecordBytes {
		errs = append(errs, fmt.Errorf("max_record_bytes: %d is outside 1..%d", o.MaxRecordBytes, hardMaxRecordBytes))
	}
	if int64(o.MaxRecordBytes)+frameOverhead > o.SegmentBytes-segHeaderSize {
		errs = append(errs, fmt.Errorf("max_record_bytes: %d does not fit in a segment of %d bytes", o.MaxRecordBytes, o.SegmentBytes))
	}
	if o.QueueBytes < 0 {
		errs = append(errs, fmt.Errorf("queue_bytes: %d is negative", o.QueueBytes))
	}
	// Under PolicyBlock, progress needs room for a full active segment (it
	// is never deleted), a full queue and one more record.
	if need := o.SegmentBytes + int64(o.QueueBytes) + int64(o.MaxRecordBytes) + frameOverhead; o.MaxBytes < need {
		errs = append(errs, fmt.Errorf("max_bytes: %d is below segment_bytes + queue_bytes + max_record_bytes (%d)", o.MaxBytes, need))
	}
	if o.CommitInterval < 0 {
		errs = append(errs, fmt.Errorf("commit_interval: %s is negative", o.CommitInterval))
	}
	if o.CommitBytes < 0 {
		errs = append(errs, fmt.Errorf("commit_bytes: %d is negative", o.CommitBytes))
	}
	if o.CheckpointInterval < 0 {
		errs = append(errs, fmt.Errorf("checkpoint_interval: %s is negative", o.CheckpointInterval))
	}
	if o.MaxInflight < 0 {
		errs = append(errs, fmt.Errorf("max_inflight: %d is negative", o.MaxInflight))
	}
	if err := errors.Join(errs...); err != nil {
		return o, fmt.Errorf("validating spool options: %w", err)
	}
	return o, nil
}
