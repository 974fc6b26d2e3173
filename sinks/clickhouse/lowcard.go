package clickhouse

// lowCard builds a LowCardinality(String) or LowCardinality(FixedString)
// column as *string values, one pointer per distinct value. The driver
// keeps a LowCardinality column's dictionary in a map keyed by the
// appended value as an interface: a string is boxed (an allocation per
// row) and hashed by its bytes, while a pointer is neither; equal values
// sharing one pointer makes the dictionary come out the same, for about
// half the driver's cost. NULL is a nil pointer.
type lowCard struct {
	conv   *scalar[string] // converts and checks the values
	ptrs   []*string
	intern map[string]*string
	// few holds the values while there are at most maxFew: comparing a
	// handful of strings is cheaper than hashing one.
	few []lcValue
}

type lcValue struct {
	s string
	p *string
}

const maxFew = 8

func newLowCard(conv *scalar[string]) *lowCard {
	return &lowCard{conv: conv, intern: map[string]*string{}}
}

func (b *lowCard) add(v *value, e *encoder) error {
	if err := b.conv.add(v, e); err != nil {
		return err
	}
	b.push()
	return nil
}

func (b *lowCard) addToken(tok []byte, e *encoder) error {
	if err := b.conv.addToken(tok, e); err != nil {
		return err
	}
	b.push()
	return nil
}

// push interns the value conv appended last. The value's bytes (the
// record's, or the encoder's arena) stay put until reset.
func (b *lowCard) push() {
	n := len(b.conv.vals) - 1
	if b.conv.nullable && b.conv.nulls[n] {
		b.ptrs = append(b.ptrs, nil)
		return
	}
	s := b.conv.vals[n]
	if len(b.intern) <= maxFew {
		for i := range b.few {
			if v := &b.few[i]; len(v.s) == len(s) && v.s == s {
				b.ptrs = append(b.ptrs, v.p)
				return
			}
		}
	}
	p := b.intern[s]
	if p == nil {
		p = new(string)
		*p = s
		b.intern[s] = p
		if len(b.intern) <= maxFew {
			b.few = append(b.few, lcValue{s, p})
		}
	}
	b.ptrs = append(b.ptrs, p)
}

func (b *lowCard) len() int { return len(b.ptrs) }

func (b *lowCard) truncate(n int) {
	b.conv.truncate(n)
	clear(b.ptrs[n:])
	b.ptrs = b.ptrs[:n]
}

func (b *lowCard) slice(lo, hi int) any { return b.ptrs[lo:hi] }

func (b *lowCard) reset() {
	b.conv.reset()
	clear(b.ptrs)
	b.ptrs = b.ptrs[:0]
	clear(b.intern) // its keys point into records and the arena
	clear(b.few)
	b.few = b.few[:0]
}
