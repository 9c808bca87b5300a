package caddymodule

import (
	"net/http"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/scim-shadow/caddy-scim-shadow/shadow"
)

// decisionLogger logs every decision of the engine as structured fields. It never logs a
// header or a body, so no secret can reach the log.
type decisionLogger struct {
	logger *zap.Logger
}

// Observe logs one decision: writes at info, reads at debug, failures at error, and each
// finding at its own severity.
func (l *decisionLogger) Observe(r *http.Request, d *shadow.Decision) {
	level := zapcore.InfoLevel
	switch {
	case d.Outcome == shadow.OutcomeError:
		level = zapcore.ErrorLevel
	case d.Outcome == shadow.OutcomeRejected:
		level = zapcore.WarnLevel
	case !d.Target.Op.IsWrite():
		level = zapcore.DebugLevel
	}
	fields := []zap.Field{
		zap.String("connection", d.Connection),
		zap.String("mode", string(d.Mode)),
		zap.String("operation", string(d.Target.Op)),
		zap.String("resource", d.Target.ResourceType),
		zap.String("resource_id", d.Target.ID),
		zap.String("outcome", string(d.Outcome)),
	}
	if d.RecordID != 0 {
		fields = append(fields, zap.Int64("record_id", d.RecordID), zap.Int("attempts", d.Attempts))
	}
	if d.Err != nil {
		fields = append(fields, zap.Error(d.Err))
	}
	if ce := l.logger.Check(level, "scim request"); ce != nil {
		ce.Write(fields...)
	}
	for _, f := range d.Findings {
		lvl := zapcore.InfoLevel
		if f.Severity == "warning" || f.Severity == "error" {
			lvl = zapcore.WarnLevel
		}
		if ce := l.logger.Check(lvl, f.Message); ce != nil {
			ce.Write(
				zap.String("connection", d.Connection),
				zap.String("resource", d.Target.ResourceType),
				zap.String("resource_id", d.Target.ID),
				zap.String("finding", f.Code),
				zap.String("attribute", f.Attribute),
				zap.String("source", f.Source),
				zap.Int64("record_id", d.RecordID),
			)
		}
	}
}
