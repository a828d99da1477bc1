// Package rawphone turns raw mobile numbers, as CRM exports hold them
// ("+86 138-0013-8000", "8613800138000"), into the lines a WeChat Pay Phone
// package wants: the lowercase hex MD5 of the 11 digits and "\n".
//
// It is a package of its own, not part of linecheck, because it transforms
// lines where linecheck only counts them: its output is what is uploaded.
// Raw numbers are personal data: nothing here keeps one beyond the buffer
// being transformed (and the one unfinished line a stream carries over to
// its next buffer), and reports hold counts and line numbers only.
package rawphone

import (
	"crypto/md5"
	"encoding/hex"
)

const (
	// LineLen is the length of an uploaded line: 32 hex characters and "\n".
	LineLen = 2*md5.Size + 1
	// MaxRawLineLen is the longest raw line, its line ending aside, read as a
	// number. Longer lines are invalid whatever they hold, so a stream need
	// not carry more than this of a line from one buffer to the next.
	MaxRawLineLen = 64
)

// mobileLen is the length of a mainland China mobile number.
const mobileLen = 11

// HashLine writes the uploaded line for one raw line (without its "\n" or
// "\r\n") to dst and reports whether line held a mobile number; dst is left
// alone when it did not. Spaces, '-', '(' and ')' are removed, then a
// leading "+86", "0086" or "86" before 11 digits; what remains must be 11
// digits starting with '1'.
func HashLine(dst *[LineLen]byte, line []byte) bool {
	sum, ok := Sum(line)
	if !ok {
		return false
	}
	hex.Encode(dst[:LineLen-1], sum[:])
	dst[LineLen-1] = '\n'
	return true
}

// Sum returns the MD5 of the mobile number one raw line holds (the bytes
// HashLine writes in hex) and whether it held one, by HashLine's rules.
func Sum(line []byte) (sum [md5.Size]byte, ok bool) {
	var digits [mobileLen]byte
	if !normalize(&digits, line) {
		return sum, false
	}
	return md5.Sum(digits[:]), true
}

// normalize writes the 11 digits of the mobile number line holds to digits.
func normalize(digits *[mobileLen]byte, line []byte) bool {
	if len(line) > MaxRawLineLen {
		return false
	}
	var kept [len("0086") + mobileLen]byte
	n := 0
	for _, b := range line {
		switch {
		case b == ' ' || b == '-' || b == '(' || b == ')':
			continue
		case n == len(kept):
			return false // more digits than any accepted form has
		case b >= '0' && b <= '9', b == '+' && n == 0:
			kept[n] = b
			n++
		default:
			return false
		}
	}
	number := withoutCountryCode(kept[:n])
	if len(number) != mobileLen || number[0] != '1' {
		return false
	}
	copy(digits[:], number)
	return true
}

// withoutCountryCode removes a leading +86, 0086 or 86 when exactly 11
// characters follow it. An 11-digit number never starts with 86 (it starts
// with 1), so removing the code is never ambiguous.
func withoutCountryCode(s []byte) []byte {
	for _, code := range [...]string{"+86", "0086", "86"} {
		if len(s) == len(code)+mobileLen && string(s[:len(code)]) == code {
			return s[len(code):]
		}
	}
	return s
}
