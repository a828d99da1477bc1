package lazylog

import (
	"bytes"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func newLogger(buf *bytes.Buffer, level zapcore.Level) *zap.Logger {
	enc := zapcore.NewJSONEncoder(zapcore.EncoderConfig{MessageKey: "msg"})
	return zap.New(Core(zapcore.NewCore(enc, zapcore.AddSync(buf), level)))
}

func TestCore(t *testing.T) {
	tests := []struct {
		name string
		log  func(*zap.Logger)
		want string
	}{
		{
			name: "fields added with With are written with the entry",
			log: func(l *zap.Logger) {
				l.With(zap.String("object", "ns/a")).With(zap.Int("n", 1)).Info("done", zap.Bool("ok", true))
			},
			want: `{"msg":"done","object":"ns/a","n":1,"ok":true}`,
		},
		{
			name: "an entry below the level writes nothing",
			log:  func(l *zap.Logger) { l.With(zap.String("object", "ns/a")).Debug("dropped") },
			want: ``,
		},
		{
			name: "two loggers derived from one parent keep their own fields",
			log: func(l *zap.Logger) {
				parent := l.With(zap.String("a", "1"), zap.String("b", "2"))
				first, second := parent.With(zap.String("c", "first")), parent.With(zap.String("c", "second"))
				first.Info("one")
				second.Info("two")
			},
			want: `{"msg":"one","a":"1","b":"2","c":"first"}` + "\n" + `{"msg":"two","a":"1","b":"2","c":"second"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			tt.log(newLogger(&buf, zapcore.InfoLevel))
			if got := strings.TrimSpace(buf.String()); got != tt.want {
				t.Errorf("logged\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func BenchmarkWithUnlogged(b *testing.B) {
	var buf bytes.Buffer
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	plain := zap.New(zapcore.NewCore(enc, zapcore.AddSync(&buf), zapcore.ErrorLevel))
	lazy := zap.New(Core(zapcore.NewCore(enc, zapcore.AddSync(&buf), zapcore.ErrorLevel)))
	for _, l := range []struct {
		name   string
		logger *zap.Logger
	}{{"zap", plain}, {"lazy", lazy}} {
		b.Run(l.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				l.logger.With(zap.String("controller", "userpackageupload"), zap.Any("UserPackageUpload", map[string]string{"name": "a", "namespace": "ns"})).
					With(zap.String("reconcileID", "3f1c")).Info("not written")
			}
		})
	}
}
