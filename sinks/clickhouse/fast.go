package clickhouse

import (
	"bytes"
	"time"
)

// Fast paths: each converts the JSON text of a value's common forms
// straight to its column's Go type, and reports false for anything
// else, which the general conversion (convert.go) then converts or
// explains. TestFastPaths checks the two agree.

// intFast converts up to 18 plain digits, with an optional minus, within
// [lo, hi].
func intFast[T int8 | int16 | int32 | int64 | uint8 | uint16 | uint32 | uint64](lo, hi int64) func([]byte) (T, bool) {
	return func(tok []byte) (T, bool) {
		i, neg := 0, tok[0] == '-'
		if neg {
			i = 1
		}
		if len(tok)-i == 0 || len(tok)-i > 18 {
			return 0, false
		}
		var n int64
		for ; i < len(tok); i++ {
			d := tok[i] - '0'
			if d > 9 {
				return 0, false
			}
			n = n*10 + int64(d)
		}
		if neg {
			n = -n
		}
		if n < lo || n > hi {
			return 0, false
		}
		return T(n), true
	}
}

func floatFast[T float32 | float64](tok []byte) (T, bool) {
	f, ok := parseShortFloat(tok) // at most 15 digits: within Float32's range too
	return T(f), ok
}

// stringFast takes an unescaped JSON string as it is: its bytes are the
// record's, which outlives the insert.
func stringFast(tok []byte) (string, bool) {
	if tok[0] != '"' || bytes.IndexByte(tok, '\\') >= 0 {
		return "", false
	}
	return bstr(tok[1 : len(tok)-1]), true
}

func boolFast(tok []byte) (bool, bool) {
	switch tok[0] {
	case 't':
		return true, true
	case 'f':
		return false, true
	}
	return false, false
}

// timeFast reads a time text (an RFC 3339 string, mostly) within
// [lo, hi]. Consecutive rows mostly share a date: the Unix time of the
// last date read is kept, so that for a UTC time ("...T12:00:00.042Z")
// of the same date only the clock is parsed.
func timeFast(t *colType, lo, hi time.Time) func([]byte) (time.Time, bool) {
	loc := t.loc
	var (
		day     [10]byte // the date of dayUnix, "YYYY-MM-DD"
		dayUnix int64
		haveDay bool
	)
	return func(tok []byte) (time.Time, bool) {
		if len(tok) < 2 || tok[0] != '"' {
			return time.Time{}, false
		}
		b := tok[1 : len(tok)-1]
		if haveDay && len(b) >= 20 && b[len(b)-1] == 'Z' && [10]byte(b[:10]) == day {
			if secs, nsec, ok := clockUTC(b); ok {
				x := time.Unix(dayUnix+secs, nsec)
				if x.Before(lo) || x.After(hi) {
					return time.Time{}, false
				}
				return x, true
			}
		}
		x, ok := parseTimeText(b, loc)
		if !ok || x.Before(lo) || x.After(hi) {
			return time.Time{}, false
		}
		if len(b) >= 20 && b[len(b)-1] == 'Z' {
			if secs, _, ok := clockUTC(b); ok {
				day, dayUnix, haveDay = [10]byte(b[:10]), x.Unix()-secs, true
			}
		}
		return x, true
	}
}

// clockUTC reads the clock of "YYYY-MM-DDThh:mm:ss[.f]Z": the seconds
// since midnight and the nanoseconds.
func clockUTC(b []byte) (secs, nsec int64, ok bool) {
	if b[10] != 'T' || b[13] != ':' || b[16] != ':' {
		return 0, 0, false
	}
	var d [6]byte
	for i, p := range [6]int{11, 12, 14, 15, 17, 18} {
		if d[i] = b[p] - '0'; d[i] > 9 {
			return 0, 0, false
		}
	}
	h, m, sec := int64(d[0])*10+int64(d[1]), int64(d[2])*10+int64(d[3]), int64(d[4])*10+int64(d[5])
	if h > 23 || m > 59 || sec > 59 {
		return 0, 0, false
	}
	i, end := 19, len(b)-1 // end: the Z
	if i < end {
		if b[i] != '.' || end-i-1 < 1 || end-i-1 > 9 {
			return 0, 0, false
		}
		digits := 0
		for i++; i < end; i++ {
			c := b[i] - '0'
			if c > 9 {
				return 0, 0, false
			}
			nsec = nsec*10 + int64(c)
			digits++
		}
		for ; digits < 9; digits++ {
			nsec *= 10
		}
	}
	return h*3600 + m*60 + sec, nsec, true
}
