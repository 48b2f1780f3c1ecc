package hixietest

// NewKeyForTest exposes newKey's key to the tests.
func NewKeyForTest() string { _, k := newKey(); return k }
