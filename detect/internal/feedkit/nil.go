package feedkit

import "reflect"

// IsNil reports whether v is nil or an interface holding a nil pointer,
// map, slice, func or channel: a (*pool.Pool)(nil) passed as a
// detect.Notifier is not == nil, yet calling it panics on the first event,
// far from the mistake. Feeds refuse such a Notifier when they are built.
func IsNil(v any) bool {
	if v == nil {
		return true
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan, reflect.Interface, reflect.UnsafePointer:
		return rv.IsNil()
	}
	return false
}
