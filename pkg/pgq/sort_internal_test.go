package pgq

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestSortByID checks the consumer's sort against the standard library's on ordered,
// reversed, nearly ordered, interleaved and shuffled batches, reusing one buffer.
func TestSortByID(t *testing.T) {
	var sb sortBuffer
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 2, 3, 10, 1000, 10000} {
		ids := make([]int64, n)
		for i := range ids {
			ids[i] = int64(i*3 + 7)
		}
		shapes := map[string]func([]int64){
			"ordered":  func([]int64) {},
			"reversed": slices.Reverse[[]int64],
			"nearly": func(s []int64) {
				for i := 0; i+1 < len(s); i += 17 {
					s[i], s[i+1] = s[i+1], s[i]
				}
			},
			"two runs": func(s []int64) {
				odd, even := []int64{}, []int64{}
				for i, v := range s {
					if i%2 == 0 {
						even = append(even, v)
					} else {
						odd = append(odd, v)
					}
				}
				copy(s, append(even, odd...))
			},
			"shuffled": func(s []int64) { rng.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] }) },
		}
		for name, shape := range shapes {
			in := slices.Clone(ids)
			shape(in)
			evs := make([]Event, n)
			for i, id := range in {
				evs[i] = Event{ID: id, Data: Text(string(rune('a' + id%26)))}
			}
			sb.sortByID(evs)
			for i, ev := range evs {
				if ev.ID != ids[i] || ev.Data.String != string(rune('a'+ids[i]%26)) {
					t.Fatalf("%d events, %s: position %d has id %d data %q, want id %d", n, name, i, ev.ID, ev.Data.String, ids[i])
				}
			}
		}
	}
}

// BenchmarkSortByID sorts 10,000 shuffled events (the worst case; a batch usually
// comes in order, which costs one pass).
func BenchmarkSortByID(b *testing.B) {
	var sb sortBuffer
	rng := rand.New(rand.NewPCG(1, 2))
	src := make([]Event, 10000)
	for i := range src {
		src[i].ID = int64(i)
	}
	rng.Shuffle(len(src), func(i, j int) { src[i], src[j] = src[j], src[i] })
	evs := make([]Event, len(src))
	for b.Loop() {
		copy(evs, src)
		sb.sortByID(evs)
	}
}
