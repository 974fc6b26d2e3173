package schemas

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/big"
	"reflect"

	"github.com/fxamacker/cbor/v2"
	"github.com/vmihailenco/msgpack/v5"
)

// MessagePack and CBOR payloads decode into the values JSON payloads give
// rules (map[string]any, []any, string, float64, bool, nil) plus int64 for
// integers (uint64 above math.MaxInt64), []byte for byte strings and
// time.Time for timestamps. Map keys that are not strings are formatted
// with fmt's %v.

// decodeMsgpack decodes one MessagePack value; trailing bytes are an error.
func decodeMsgpack(_ string, payload []byte) (any, error) {
	if err := checkMsgpack(payload); err != nil {
		return nil, fmt.Errorf("decoding MessagePack: %w", err)
	}
	r := bytes.NewReader(payload)
	dec := msgpack.GetDecoder()
	defer msgpack.PutDecoder(dec)
	dec.Reset(r)
	v, err := dec.DecodeInterfaceLoose()
	if err != nil {
		return nil, fmt.Errorf("decoding MessagePack: %w", err)
	}
	if r.Len() > 0 {
		return nil, fmt.Errorf("decoding MessagePack: %d bytes after the value", r.Len())
	}
	return normalize(v, 0)
}

var cborMode = func() cbor.DecMode {
	m, err := cbor.DecOptions{
		DefaultMapType:        reflect.TypeOf(map[any]any(nil)),
		MaxNestedLevels:       maxDepth,
		DupMapKey:             cbor.DupMapKeyEnforcedAPF,
		IndefLength:           cbor.IndefLengthAllowed,
		DefaultByteStringType: reflect.TypeOf([]byte(nil)),
	}.DecMode()
	if err != nil {
		panic(err) // constant options: a programming error
	}
	return m
}()

// decodeCBOR decodes one CBOR data item; trailing bytes are an error.
func decodeCBOR(_ string, payload []byte) (any, error) {
	var v any
	if err := cborMode.Unmarshal(payload, &v); err != nil {
		return nil, fmt.Errorf("decoding CBOR: %w", err)
	}
	return normalize(v, 0)
}

// maxDepth bounds nesting, as the JSON decoder does.
const maxDepth = 64

var errTooDeep = errors.New("nested too deeply")

// normalize converts a decoded value to the types rules expect.
func normalize(v any, depth int) (any, error) {
	if depth > maxDepth {
		return nil, errTooDeep
	}
	switch x := v.(type) {
	case nil, bool, string, float64, int64, []byte:
		return v, nil
	case float32:
		return float64(x), nil
	case int:
		return int64(x), nil
	case int8:
		return int64(x), nil
	case int16:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case uint:
		return normUint(uint64(x)), nil
	case uint8:
		return int64(x), nil
	case uint16:
		return int64(x), nil
	case uint32:
		return int64(x), nil
	case uint64:
		return normUint(x), nil
	case []any:
		for i, e := range x {
			n, err := normalize(e, depth+1)
			if err != nil {
				return nil, err
			}
			x[i] = n
		}
		return x, nil
	case map[string]any:
		for k, e := range x {
			n, err := normalize(e, depth+1)
			if err != nil {
				return nil, err
			}
			x[k] = n
		}
		return x, nil
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			n, err := normalize(e, depth+1)
			if err != nil {
				return nil, err
			}
			ks, ok := k.(string)
			if !ok {
				ks = fmt.Sprint(k)
			}
			if _, dup := m[ks]; dup {
				// Keeping either value would depend on map order.
				return nil, fmt.Errorf("two map keys read as %q", ks)
			}
			m[ks] = n
		}
		return m, nil
	case big.Int:
		return bigValue(&x), nil
	case *big.Int:
		return bigValue(x), nil
	case cbor.Tag:
		n, err := normalize(x.Content, depth+1)
		if err != nil {
			return nil, err
		}
		return map[string]any{"tag": normUint(x.Number), "value": n}, nil
	}
	// time.Time and any other leaf value is kept as it is.
	return v, nil
}

func normUint(u uint64) any {
	if u > math.MaxInt64 {
		return u
	}
	return int64(u)
}

// bigValue keeps a bignum exact: as an int64 when it fits, else as its
// decimal string.
func bigValue(b *big.Int) any {
	if b.IsInt64() {
		return b.Int64()
	}
	return b.String()
}
