package checkslot

import (
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

func TestNext(t *testing.T) {
	const uid = types.UID("5f0c1a2b-0000-4000-8000-000000000001")
	interval := time.Minute
	slot := Next(uid, interval, time.Unix(1_800_000_000, 0))
	tests := []struct {
		name string
		at   time.Time
		want time.Time
	}{
		{name: "a time just before a slot gives that slot", at: slot.Add(-time.Millisecond), want: slot},
		{name: "the slot itself gives the one an interval later", at: slot, want: slot.Add(interval)},
		{name: "a time just after a slot gives the one an interval later", at: slot.Add(time.Millisecond), want: slot.Add(interval)},
		{name: "a time long before gives a slot a whole number of intervals earlier", at: slot.Add(-100*interval + time.Second), want: slot.Add(-99 * interval)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Next(uid, interval, tt.at); !got.Equal(tt.want) {
				t.Errorf("Next(%s) = %s, want %s", tt.at, got, tt.want)
			}
		})
	}
}

func TestAnObjectsSlotIsTheSameForEveryoneAndOnlyItsOwn(t *testing.T) {
	a, b := types.UID("uid-a"), types.UID("uid-b")
	if Offset(a, time.Hour) != Offset(a, time.Hour) {
		t.Error("the same UID gave two offsets: a restarted manager would move its checks")
	}
	if Offset(a, time.Hour) == Offset(b, time.Hour) {
		t.Error("two UIDs share an offset to the nanosecond")
	}
	for _, interval := range []time.Duration{time.Minute, time.Hour, 24 * time.Hour} {
		if o := Offset(a, interval); o < 0 || o >= interval {
			t.Errorf("offset %s outside the interval %s", o, interval)
		}
	}
}

// A thousand objects created at once check over the whole minute, not in
// one second: no second holds more than twice its share plus a few (a
// uniform spread of 1,000 over 60 seconds gives about 17 a second).
func TestAThousandObjectsCheckSpreadOverTheInterval(t *testing.T) {
	const n = 1000
	perSecond := map[int]int{}
	for i := range n {
		uid := types.UID(fmt.Sprintf("%08x-0000-4000-8000-%012x", i*2654435761, i))
		perSecond[int(Offset(uid, time.Minute)/time.Second)]++
	}
	busiest := 0
	for _, c := range perSecond {
		busiest = max(busiest, c)
	}
	if limit := 2*n/60 + 5; busiest > limit || len(perSecond) < 55 {
		t.Errorf("the busiest second holds %d checks (limit %d), %d of 60 seconds have any", busiest, limit, len(perSecond))
	}
}
