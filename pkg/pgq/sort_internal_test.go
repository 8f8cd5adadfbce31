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

// TestSortBufferForgetsUnusualEvents: after a batch of big events the consumer
// expects big ones, and a few ordinary batches later it sorts in memory again.
func TestSortBufferForgetsUnusualEvents(t *testing.T) {
	sb := sortBuffer{limit: 16 << 20}
	if !sb.fits(10000) || !sb.fits(-1) {
		t.Fatal("10,000 events of unknown size should be expected to fit in 16 MiB")
	}
	sb.learn(100*200<<10, 100) // 100 events of 200 KiB
	if sb.fits(10000) {
		t.Fatalf("after 200 KiB events (mean %d), 10,000 events should not be expected to fit", sb.avg)
	}
	batches := 0
	for ; !sb.fits(10000) && batches < 20; batches++ {
		sb.learn(10000*300, 10000) // streamed batches of 300-byte events
	}
	if batches > 12 {
		t.Fatalf("took %d ordinary batches to expect ordinary events again (mean %d)", batches, sb.avg)
	}
	if !(&sortBuffer{limit: 16 << 20}).fits(0) || (&sortBuffer{limit: -1}).fits(0) || (*sortBuffer)(nil).fits(0) {
		t.Fatal("an empty batch fits a positive buffer, and nothing fits a disabled one")
	}
}
