package bridge

import (
	"errors"
	"io"
	"log/slog"
	"testing"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
)

// endCase is one row of TestDecideEnd; String names the inputs so a
// failure says which row broke.
type endCase struct {
	name  string
	in    endInput
	first endDecision // what decideEnd says with the second half unknown (send, target)
	want  endDecision // once both ended (send and target must not change)
}

func (c endCase) String() string { return c.name }

func TestDecideEnd(t *testing.T) {
	t.Parallel()
	reset := errors.New("connection reset by peer")
	targetWrite := wrap(errTargetWrite, reset)
	clientWrite := wrap(errClientWrite, io.ErrClosedPipe)
	violation := &protocolError{closeFrame{websocket.StatusInvalidFramePayloadData, "invalid base64"},
		errors.New("bridge: client sent invalid base64")}
	clientEOF := halfResult{fromClient: true, eof: true}
	targetEOF := halfResult{eof: true}
	bye := &closeFrame{websocket.StatusNormalClosure, "bye"}
	targetFailed := closeFrame{websocket.StatusInternalError, "target connection failed"}
	targetClosed := closeFrame{websocket.StatusNormalClosure, "target closed"}
	dead := errors.New("heartbeat: dead peer")

	for _, c := range []endCase{{
		name:  "client closes cleanly with a code: target drained, code from the client",
		in:    endInput{first: clientEOF, second: &halfResult{err: errors.New("read deadline")}, received: bye},
		first: endDecision{target: targetStopReads},
		want: endDecision{target: targetStopReads, shutTargetWrite: true, endedBy: endClient,
			close: *bye, status: websocket.StatusNormalClosure, level: slog.LevelInfo},
	}, {
		name:  "client closes cleanly without a code (Hixie): 1005",
		in:    endInput{first: clientEOF, second: &targetEOF},
		first: endDecision{target: targetStopReads},
		want: endDecision{target: targetStopReads, shutTargetWrite: true, endedBy: endClient,
			status: websocket.StatusNoStatusRcvd, level: slog.LevelInfo},
	}, {
		name:  "write to the target fails: 1011, the target ended it, warn",
		in:    endInput{first: halfResult{fromClient: true, err: targetWrite}, second: &halfResult{err: reset}},
		first: endDecision{send: targetFailed, target: targetClose},
		want: endDecision{send: targetFailed, target: targetClose, endedBy: endTarget, close: targetFailed,
			status: websocket.StatusInternalError, err: targetWrite, level: slog.LevelWarn},
	}, {
		name:  "client goes away: 1006, info",
		in:    endInput{first: halfResult{fromClient: true, err: io.ErrUnexpectedEOF}, second: &halfResult{err: reset}},
		first: endDecision{target: targetClose},
		want: endDecision{target: targetClose, endedBy: endClient, status: websocket.StatusAbnormalClosure,
			err: io.ErrUnexpectedEOF, level: slog.LevelInfo},
	}, {
		name:  "client breaks the protocol: the code the adapter sent",
		in:    endInput{first: halfResult{fromClient: true, err: violation}, second: &halfResult{err: reset}},
		first: endDecision{target: targetClose},
		want: endDecision{target: targetClose, endedBy: endClient, close: violation.closeFrame,
			status: websocket.StatusInvalidFramePayloadData, err: violation, level: slog.LevelInfo},
	}, {
		name:  "target closes, client answers the close: 1000 target closed, target's write side shut",
		in:    endInput{first: targetEOF, second: &clientEOF, received: bye},
		first: endDecision{send: targetClosed, target: targetKeep},
		want: endDecision{send: targetClosed, target: targetKeep, shutTargetWrite: true, endedBy: endTarget,
			close: targetClosed, status: websocket.StatusNormalClosure, level: slog.LevelInfo},
	}, {
		name:  "target closes, client vanishes before answering: no drain",
		in:    endInput{first: targetEOF, second: &halfResult{fromClient: true, err: io.ErrUnexpectedEOF}},
		first: endDecision{send: targetClosed, target: targetKeep},
		want: endDecision{send: targetClosed, target: targetKeep, endedBy: endTarget,
			close: targetClosed, status: websocket.StatusNormalClosure, level: slog.LevelInfo},
	}, {
		name:  "write to the client fails under the client's clean close: no error, drained",
		in:    endInput{first: halfResult{err: clientWrite}, second: &clientEOF, received: bye},
		first: endDecision{target: targetBoundWrites},
		want: endDecision{target: targetBoundWrites, shutTargetWrite: true, endedBy: endClient,
			close: *bye, status: websocket.StatusNormalClosure, level: slog.LevelInfo},
	}, {
		name:  "write to the client fails after a protocol violation: the violation is the cause",
		in:    endInput{first: halfResult{err: clientWrite}, second: &halfResult{fromClient: true, err: violation}},
		first: endDecision{target: targetBoundWrites},
		want: endDecision{target: targetBoundWrites, endedBy: endClient, close: violation.closeFrame,
			status: websocket.StatusInvalidFramePayloadData, err: violation, level: slog.LevelInfo},
	}, {
		name:  "write to the client fails, then the target write too: the client write stays the cause",
		in:    endInput{first: halfResult{err: clientWrite}, second: &halfResult{fromClient: true, err: targetWrite}},
		first: endDecision{target: targetBoundWrites},
		want: endDecision{target: targetBoundWrites, endedBy: endClient, status: websocket.StatusAbnormalClosure,
			err: clientWrite, level: slog.LevelInfo},
	}, {
		name:  "target fails: 1011, warn",
		in:    endInput{first: halfResult{err: reset}, second: &clientEOF},
		first: endDecision{send: targetFailed, target: targetClose},
		want: endDecision{send: targetFailed, target: targetClose, endedBy: endTarget, close: targetFailed,
			status: websocket.StatusInternalError, err: reset, level: slog.LevelWarn},
	}, {
		name: "idle timeout aborts: the bridge ended it with 1001, no drain even after a clean close",
		in: endInput{first: clientEOF, second: &targetEOF, received: bye,
			abort: &abortCause{closeFrame: closeFrame{websocket.StatusGoingAway, "idle timeout"}}},
		first: endDecision{target: targetStopReads},
		want: endDecision{target: targetStopReads, endedBy: endBridge,
			close: closeFrame{websocket.StatusGoingAway, "idle timeout"}, status: websocket.StatusGoingAway, level: slog.LevelInfo},
	}, {
		name: "dead peer dropped without a close: 1006, warn",
		in: endInput{first: halfResult{fromClient: true, err: io.ErrUnexpectedEOF}, second: &halfResult{err: reset},
			abort: &abortCause{closeFrame: closeFrame{0, "no answer to ping"}, err: dead}},
		first: endDecision{target: targetClose},
		want: endDecision{target: targetClose, endedBy: endBridge, close: closeFrame{0, "no answer to ping"},
			status: websocket.StatusAbnormalClosure, err: dead, level: slog.LevelWarn},
	}} {
		t.Run(c.name, func(t *testing.T) {
			early := decideEnd(endInput{first: c.in.first})
			assert.Equal(t, c.first.send, early.send, "close sent when the first half ends")
			assert.Equal(t, c.first.target, early.target, "target action when the first half ends")
			got := decideEnd(c.in)
			assert.Equal(t, early.send, got.send, "the final decision changed what was sent")
			assert.Equal(t, early.target, got.target)
			assert.Equal(t, c.want, got, c.String())
		})
	}
}
