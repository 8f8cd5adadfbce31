package pgq

// SetHook lets this package's tests stop (kill) a consumer at a named point of a
// batch: "before-finish", "before-target-commit", "after-target-commit",
// "after-commit".
func SetHook(c *Consumer, f func(point string)) { c.hook = f }

// Classify exposes the PostgreSQL-error classification to the tests.
func Classify(err error) error { return classify(err) }

// SortCounts tells how many batches c sorted itself and how many it found too big
// for its sort buffer after starting to read them.
func SortCounts(c *Consumer) (sorted, overflowed int) { return c.sort.sorted, c.sort.overflowed }
