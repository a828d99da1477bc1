package wechatpay

import (
	"strings"
	"testing"
)

func TestCheckPlan(t *testing.T) {
	tests := []struct {
		name                          string
		partSize, partCount, fileSize int64
		wantErr                       string // empty: the plan is accepted
	}{
		{name: "a plan whose last part is shorter is accepted", partSize: 10, partCount: 3, fileSize: 25},
		{name: "a plan of exactly full parts is accepted", partSize: 10, partCount: 3, fileSize: 30},
		{name: "one part of the largest size is accepted", partSize: MaxPartSize, partCount: 1, fileSize: MaxPartSize},
		{name: "the most parts are accepted", partSize: 1, partCount: MaxPartCount, fileSize: MaxPartCount},
		{name: "a plan of no parts is refused", partSize: 10, partCount: 0, fileSize: 25, wantErr: "is empty"},
		{name: "parts of no bytes are refused", partSize: 0, partCount: 3, fileSize: 25, wantErr: "is empty"},
		{name: "an empty file is refused", partSize: 10, partCount: 1, fileSize: 0, wantErr: "is empty"},
		{name: "parts larger than the API allows are refused", partSize: MaxPartSize + 1, partCount: 1, fileSize: MaxPartSize + 1, wantErr: "larger than 20971520 bytes"},
		{name: "more parts than a caller may allocate are refused", partSize: 1, partCount: MaxPartCount + 1, fileSize: MaxPartCount + 1, wantErr: "more than 10000 parts"},
		{name: "too few parts for the file are refused", partSize: 10, partCount: 2, fileSize: 25, wantErr: "does not fit the file's 25 bytes"},
		{name: "a part beyond the file's end is refused", partSize: 10, partCount: 4, fileSize: 30, wantErr: "does not fit the file's 30 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckPlan(tt.partSize, tt.partCount, tt.fileSize)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("CheckPlan(%d, %d, %d) = %v, want it accepted", tt.partSize, tt.partCount, tt.fileSize, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("CheckPlan(%d, %d, %d) = %v, want an error containing %q", tt.partSize, tt.partCount, tt.fileSize, err, tt.wantErr)
			}
		})
	}
}
