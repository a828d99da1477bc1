package wechatpay

import (
	"net/http"
	"testing"
	"time"
)

func TestParseRetryAfterIsCappedAtTenMinutes(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name  string
		value string
		want  time.Duration
	}{
		{name: "seconds below the cap are kept", value: "90", want: 90 * time.Second},
		{name: "a day in seconds is capped at ten minutes", value: "86400", want: MaxRetryAfter},
		{name: "the largest integer in seconds is capped at ten minutes", value: "9223372036854775807", want: MaxRetryAfter},
		{name: "a date five minutes away is kept", value: now.Add(5 * time.Minute).Format(http.TimeFormat), want: 5 * time.Minute},
		{name: "a date a year away is capped at ten minutes", value: now.AddDate(1, 0, 0).Format(http.TimeFormat), want: MaxRetryAfter},
		{name: "a date in the past asks for no delay", value: now.Add(-time.Hour).Format(http.TimeFormat), want: 0},
		{name: "negative seconds ask for no delay", value: "-5", want: 0},
		{name: "garbage asks for no delay", value: "soon", want: 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseRetryAfter(tc.value, now); got != tc.want {
				t.Errorf("parseRetryAfter(%q) = %v, want %v", tc.value, got, tc.want)
			}
		})
	}
}
