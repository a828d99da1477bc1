package linecheck

import "golang.org/x/sys/cpu"

// haveAVX2 tells whether countPhoneGroupLines can use AVX2.
var haveAVX2 = cpu.X86.HasAVX2

// countPhoneGroupLines counts the valid phone lines at the start of p in
// whole groups of phoneGroupLines, 32 bytes at a time with AVX2: 0 without it.
func countPhoneGroupLines(p []byte) int {
	groups := len(p) / (phoneGroupLines * PhoneLineLen)
	if !haveAVX2 || groups == 0 {
		return 0
	}
	return phoneGroupLines * countPhoneGroupsAVX2(&p[0], groups)
}

// countPhoneGroupsAVX2 counts the leading groups of phoneGroupLines valid
// phone lines in the groups whole groups at p.
//
//go:noescape
func countPhoneGroupsAVX2(p *byte, groups int) int
