package tokenbytes

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

func TestCheckAndFromFile(t *testing.T) {
	long := strings.Repeat("a", MaxLen)
	tests := []struct {
		name, in    string
		check, file error // nil, ErrEmpty, ErrTooLong, or ErrByte
		offset      int
		token       string
	}{
		{name: "token", in: "eyJ.x-y_z~", token: "eyJ.x-y_z~"},
		{name: "longest", in: long, token: long},
		{name: "empty", in: "", check: ErrEmpty, file: ErrEmpty},
		{name: "too long", in: long + "a", check: ErrTooLong, file: ErrTooLong},
		{name: "longest with a line feed", in: long + "\n", check: ErrTooLong, file: ErrTooLong},
		{name: "line feeds", in: "tok\n\n", check: ErrByte, offset: 3, token: "tok"},
		{name: "only line feeds", in: "\n\n", check: ErrByte, file: ErrEmpty},
		{name: "carriage return", in: "tok\r\n", check: ErrByte, file: ErrByte, offset: 3},
		{name: "space", in: "to k", check: ErrByte, file: ErrByte, offset: 2},
		{name: "non-ASCII", in: "tö", check: ErrByte, file: ErrByte, offset: 1},
		{name: "DEL", in: "t\x7f", check: ErrByte, file: ErrByte, offset: 1},
		{name: "withdrawal record", in: string(Withdrawal("refused (403)")), check: ErrByte, offset: 1, file: ErrWithdrawn},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			same(t, "Check", Check(tt.in), tt.check, tt.offset)
			got, err := FromFile([]byte(tt.in))
			same(t, "FromFile", err, tt.file, tt.offset)
			if err == nil && got != tt.token {
				t.Errorf("FromFile = %d bytes, want %d", len(got), len(tt.token))
			}
			if err != nil && !errors.Is(err, ErrWithdrawn) && strings.Contains(err.Error(), "tok") {
				t.Errorf("error %q quotes the token", err)
			}
		})
	}
}

func same(t *testing.T, what string, err, want error, offset int) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Errorf("%s: %v, want nil", what, err)
	case want == nil:
	case want == ErrByte:
		if !errors.Is(err, ErrByte) || !strings.HasSuffix(err.Error(), " at offset "+strconv.Itoa(offset)) {
			t.Errorf("%s: %v, want a byte error at offset %d", what, err, offset)
		}
	case !errors.Is(err, want):
		t.Errorf("%s: %v, want %v", what, err, want)
	}
}

// TestWithdrawal: the record says why in one line of printable ASCII,
// FromFile gives the reason back, and a reader that knows only the token
// rule sees no token in it.
func TestWithdrawal(t *testing.T) {
	rec := Withdrawal("refused: 403\nsecond line \x00" + strings.Repeat("x", 300))
	if n := strings.Count(string(rec), "\n"); n != 1 || rec[len(rec)-1] != '\n' {
		t.Fatalf("record %q is not one line", rec)
	}
	if len(rec) > len(withdrawnPrefix)+2+maxReason+1 {
		t.Errorf("record of %d bytes: the reason is not bounded", len(rec))
	}
	_, err := FromFile(rec)
	if !errors.Is(err, ErrWithdrawn) || !strings.Contains(err.Error(), "refused: 403?second line ?") {
		t.Errorf("FromFile = %v, want ErrWithdrawn with the cleaned reason", err)
	}
	if Check(string(rec)) == nil {
		t.Error("a withdrawal record passes the token rule")
	}
}
