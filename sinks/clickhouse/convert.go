package clickhouse

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
	"unsafe"
)

// Conversions from a value to a column's Go type. Each reports why a
// value does not fit in words that name the value; the caller prefixes
// the column.

// maxExactFloat is the largest integer a float64 holds exactly.
const maxExactFloat = 1 << 53

func bstr(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// toInt64 converts an integral number (or a bool, or an integral float
// below 2^53) within [lo, hi].
func toInt64(v *value, lo, hi int64, typ string) (int64, error) {
	var n int64
	switch v.kind {
	case valInt, valBool:
		n = v.n
	case valNumber:
		var err error
		if n, err = parseInteger(v.b); err != nil {
			return 0, err
		}
	default:
		return 0, fmt.Errorf("want a number for %s, got %s", typ, v.describe())
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("%d is out of range for %s", n, typ)
	}
	return n, nil
}

// toUint64 is toInt64 for UInt64, whose range exceeds int64's.
func toUint64(v *value) (uint64, error) {
	switch v.kind {
	case valInt, valBool:
		if v.n < 0 {
			return 0, fmt.Errorf("%d is out of range for UInt64", v.n)
		}
		return uint64(v.n), nil
	case valNumber:
		if len(v.b) > 18 && v.b[0] != '-' && isDigits(v.b) {
			u, err := strconv.ParseUint(bstr(v.b), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s is out of range for UInt64", v.b)
			}
			return u, nil
		}
		n, err := parseInteger(v.b)
		if err != nil {
			return 0, err
		}
		if n < 0 {
			return 0, fmt.Errorf("%d is out of range for UInt64", n)
		}
		return uint64(n), nil
	}
	return 0, fmt.Errorf("want a number for UInt64, got %s", v.describe())
}

func isDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}

// parseInteger parses a JSON number that must be integral: digits, or a
// float form (1e3, 5.0) whose value is an exact integer.
func parseInteger(b []byte) (int64, error) {
	neg := len(b) > 0 && b[0] == '-'
	digits := b
	if neg {
		digits = b[1:]
	}
	if len(digits) > 0 && len(digits) <= 18 && isDigits(digits) {
		var n int64
		for _, c := range digits {
			n = n*10 + int64(c-'0')
		}
		if neg {
			n = -n
		}
		return n, nil
	}
	if isDigits(digits) {
		n, err := strconv.ParseInt(bstr(b), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s is out of range for a 64-bit integer", b)
		}
		return n, nil
	}
	f, err := strconv.ParseFloat(bstr(b), 64)
	if err != nil {
		return 0, fmt.Errorf("invalid number %s", clip(b))
	}
	if f != math.Trunc(f) {
		return 0, fmt.Errorf("%s is not an integer", b)
	}
	if math.Abs(f) > maxExactFloat {
		return 0, fmt.Errorf("%s is too large to convert exactly", b)
	}
	return int64(f), nil
}

// toFloat converts a number, which must be finite and, for Float32,
// within its range.
func toFloat(v *value, bits int) (float64, error) {
	var f float64
	switch v.kind {
	case valInt, valBool:
		return float64(v.n), nil
	case valNumber:
		if x, ok := parseShortFloat(v.b); ok {
			return x, nil // at most 15 digits: within Float32's range too
		}
		var err error
		f, err = strconv.ParseFloat(bstr(v.b), 64)
		if err != nil {
			var ne *strconv.NumError
			if errors.As(err, &ne) && ne.Err == strconv.ErrRange {
				return 0, fmt.Errorf("%s is out of range for Float%d", clip(v.b), bits)
			}
			return 0, fmt.Errorf("invalid number %s", clip(v.b))
		}
	default:
		return 0, fmt.Errorf("want a number for Float%d, got %s", bits, v.describe())
	}
	if bits == 32 && math.Abs(f) > math.MaxFloat32 {
		return 0, fmt.Errorf("%s is out of range for Float32", v.b)
	}
	return f, nil
}

// pow10 holds the powers of ten a float64 represents exactly.
var pow10 = [...]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15}

// parseShortFloat parses the decimals sensors send ("-21.53"): at most 15
// digits, no exponent. The digits as an integer and the power of ten are
// both exact in a float64, so one division is correctly rounded, the
// same result as strconv.ParseFloat at a fraction of its cost. It
// reports false for anything else.
func parseShortFloat(b []byte) (float64, bool) {
	i, neg := 0, false
	if len(b) > 0 && b[0] == '-' {
		i, neg = 1, true
	}
	var mant uint64
	digits, frac := 0, -1
	for ; i < len(b); i++ {
		switch c := b[i]; {
		case c >= '0' && c <= '9':
			mant = mant*10 + uint64(c-'0')
			digits++
			if frac >= 0 {
				frac++
			}
		case c == '.' && frac < 0 && digits > 0:
			frac = 0
		default:
			return 0, false
		}
	}
	if digits == 0 || digits > 15 || frac == 0 {
		return 0, false
	}
	f := float64(mant)
	if frac > 0 {
		f /= pow10[frac]
	}
	if neg {
		f = -f
	}
	return f, true
}

func toBool(v *value) (bool, error) {
	switch v.kind {
	case valBool, valInt:
		if v.n == 0 || v.n == 1 {
			return v.n == 1, nil
		}
	case valNumber:
		switch string(v.b) {
		case "0":
			return false, nil
		case "1":
			return true, nil
		}
	}
	return false, fmt.Errorf("want true or false for Bool, got %s", v.describe())
}

// Time ranges of the column types.
var (
	maxDate       = time.Date(2149, 6, 6, 0, 0, 0, 0, time.UTC)
	maxDateTime   = time.Unix(math.MaxUint32, 0).UTC()
	minDateTime64 = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)
	maxDateTime64 = time.Date(2299, 12, 31, 23, 59, 59, 999999999, time.UTC)
)

// toTime converts a time, an RFC 3339 string (or "YYYY-MM-DD hh:mm:ss",
// "YYYY-MM-DD", read in loc) or a Unix timestamp: seconds, or
// milliseconds, microseconds or nanoseconds when it is too large to be
// seconds (>= 1e11, 1e14, 1e17), and checks it against [lo, hi].
func toTime(v *value, loc *time.Location, lo, hi time.Time, typ string) (time.Time, error) {
	var t time.Time
	switch v.kind {
	case valTime:
		t = v.t
	case valString:
		var ok bool
		if t, ok = parseTimeText(v.b, loc); !ok {
			return t, fmt.Errorf("want a time for %s, got %s (use RFC 3339, e.g. 2024-05-01T12:00:00Z)", typ, v.describe())
		}
	case valNumber, valInt:
		var err error
		if t, err = unixTime(v); err != nil {
			return t, err
		}
	default:
		return t, fmt.Errorf("want a time for %s, got %s", typ, v.describe())
	}
	if t.Before(lo) || t.After(hi) {
		return t, fmt.Errorf("%s is out of range for %s (%s to %s)", t.UTC().Format(time.RFC3339Nano), typ, lo.Format(time.DateOnly), hi.Format(time.DateOnly))
	}
	return t, nil
}

func unixTime(v *value) (time.Time, error) {
	if v.kind == valInt {
		return time.Unix(v.n, 0), nil
	}
	if n, err := parseInteger(v.b); err == nil {
		a := n
		if a < 0 {
			a = -a
		}
		switch {
		case a < 1e11:
			return time.Unix(n, 0), nil
		case a < 1e14:
			return time.UnixMilli(n), nil
		case a < 1e17:
			return time.UnixMicro(n), nil
		}
		return time.Unix(0, n), nil
	}
	f, err := strconv.ParseFloat(bstr(v.b), 64)
	if err != nil || math.IsInf(f, 0) || math.Abs(f) >= 1e11 {
		return time.Time{}, fmt.Errorf("invalid Unix time %s", clip(v.b))
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), nil
}

// parseTimeText parses RFC 3339 (T or space, optional fraction, Z or
// offset), and without an offset "YYYY-MM-DD hh:mm:ss[.f]" or
// "YYYY-MM-DD" in loc (UTC when nil). It computes the Unix time itself:
// time.Parse and time.Date show in a profile at these rates.
func parseTimeText(b []byte, loc *time.Location) (time.Time, bool) {
	// num reads the two digits at i (the caller checked the length).
	num := func(i int) (int, bool) {
		d1, d2 := b[i]-'0', b[i+1]-'0'
		return int(d1)*10 + int(d2), d1 <= 9 && d2 <= 9
	}
	if len(b) < 10 || b[4] != '-' || b[7] != '-' {
		return time.Time{}, false
	}
	century, ok0 := num(0)
	year, ok1 := num(2)
	year += century * 100
	month, ok2 := num(5)
	day, ok3 := num(8)
	if !ok0 || !ok1 || !ok2 || !ok3 || month < 1 || month > 12 || day < 1 || day > daysIn(year, month) {
		return time.Time{}, false
	}
	hour, minute, sec, nsec := 0, 0, 0, 0
	i := 10
	if len(b) > 10 {
		if len(b) < 19 || (b[10] != 'T' && b[10] != ' ' && b[10] != 't') || b[13] != ':' || b[16] != ':' {
			return time.Time{}, false
		}
		hour, ok1 = num(11)
		minute, ok2 = num(14)
		sec, ok3 = num(17)
		if !ok1 || !ok2 || !ok3 || hour > 23 || minute > 59 || sec > 59 {
			return time.Time{}, false
		}
		i = 19
		if i < len(b) && b[i] == '.' {
			i++
			digits := 0
			for i < len(b) && b[i] >= '0' && b[i] <= '9' {
				if digits < 9 {
					nsec = nsec*10 + int(b[i]-'0')
					digits++
				}
				i++
			}
			if digits == 0 {
				return time.Time{}, false
			}
			for ; digits < 9; digits++ {
				nsec *= 10
			}
		}
	}
	off := 0
	switch {
	case i == len(b):
		if loc != nil && loc != time.UTC {
			return time.Date(year, time.Month(month), day, hour, minute, sec, nsec, loc), true
		}
	case i+1 == len(b) && (b[i] == 'Z' || b[i] == 'z'):
	case i+6 == len(b) && (b[i] == '+' || b[i] == '-') && b[i+3] == ':':
		oh, ok1 := num(i + 1)
		om, ok2 := num(i + 4)
		if !ok1 || !ok2 || oh > 23 || om > 59 {
			return time.Time{}, false
		}
		off = oh*3600 + om*60
		if b[i] == '-' {
			off = -off
		}
	default:
		return time.Time{}, false
	}
	unix := daysFromCivil(year, month, day)*86400 + int64(hour*3600+minute*60+sec-off)
	return time.Unix(unix, int64(nsec)), true
}

// daysIn returns the number of days of month in year.
func daysIn(year, month int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil returns the days from 1970-01-01 to a proleptic
// Gregorian date (Howard Hinnant's algorithm).
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 {
		era = (y - 399) / 400
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}
