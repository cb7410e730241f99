package mysqladapter

import "testing"

func TestGreetingID(t *testing.T) {
	greeting := []byte{0x5b, 0, 0, 0, 10}
	greeting = append(greeting, "11.8.3-MariaDB\x00"...)
	greeting = append(greeting, 0x39, 0x30, 0, 0, 'x') // 12345
	for _, tc := range []struct {
		name string
		b    []byte
		want int64
	}{
		{"greeting", greeting, 12345},
		{"cut in the id", greeting[:len(greeting)-3], 0},
		{"no NUL", greeting[:10], 0},
		{"error packet", []byte{0x17, 0, 0, 0, 0xff, 0x10, 0x04, 'T', 'o', 'o'}, 0},
		{"not sequence 0", append([]byte{0x5b, 0, 0, 1}, greeting[4:]...), 0},
		{"empty", nil, 0},
	} {
		if got := greetingID(tc.b); got != tc.want {
			t.Errorf("%s: greetingID = %d; want %d", tc.name, got, tc.want)
		}
	}
}
