package datapath

import (
	"fmt"
	"runtime"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// progTestRunAttr is union bpf_attr's test member (BPF_PROG_TEST_RUN).
type progTestRunAttr struct {
	progFD, retval, dataSizeIn, dataSizeOut uint32
	dataIn, dataOut                         uint64
	repeat, duration                        uint32
	ctxSizeIn, ctxSizeOut                   uint32
	ctxIn, ctxOut                           uint64
	flags, cpu, batchSize                   uint32
	_                                       uint32
}

const bpfProgTestRun = 10

// BenchmarkOn runs the hook's program repeat times on frame in the kernel's
// own loop, on a device as RunOn does, and returns the kernel's time per run.
// (cilium/ebpf's Program.Benchmark takes no context, and the device is part
// of the context.)
func (d *Datapath) BenchmarkOn(h Hook, ifindex uint32, frame []byte, repeat uint32) (time.Duration, error) {
	return d.BenchmarkProgram(d.Program(h), h, ifindex, frame, repeat)
}

// BenchmarkProgram is BenchmarkOn for any TC program, such as a reference
// program sharing this datapath's maps.
func (d *Datapath) BenchmarkProgram(prog *ebpf.Program, h Hook, ifindex uint32, frame []byte, repeat uint32) (time.Duration, error) {
	_, per, err := d.testRun(prog, h, ifindex, frame, repeat, -1)
	return per, err
}

// testRun runs prog repeat times on frame in the kernel's own loop, on the
// sandbox thread with the device in the context, pinned to cpu for the run
// when cpu >= 0. It returns the last run's return code and the kernel's time
// per run. A run a signal interrupts is run again whole.
func (d *Datapath) testRun(prog *ebpf.Program, h Hook, ifindex uint32, frame []byte, repeat uint32, cpu int) (uint32, time.Duration, error) {
	if d.sandbox == nil {
		return 0, 0, fmt.Errorf("benchmark %s: the datapath was not loaded with TestDevices", h)
	}
	ctx := skbContext{Ifindex: ifindex}
	if h == FromContainer {
		ctx.IngressIfindex = ifindex
	}
	attr := progTestRunAttr{
		progFD:     uint32(prog.FD()),
		dataSizeIn: uint32(len(frame)),
		dataIn:     uint64(uintptr(unsafe.Pointer(&frame[0]))),
		repeat:     repeat,
		ctxSizeIn:  uint32(unsafe.Sizeof(ctx)),
		ctxIn:      uint64(uintptr(unsafe.Pointer(&ctx))),
	}
	var errno unix.Errno
	var err error
	d.sandbox.do(func() {
		if cpu >= 0 {
			var old, one unix.CPUSet
			if err = unix.SchedGetaffinity(0, &old); err != nil {
				return
			}
			one.Set(cpu)
			if err = unix.SchedSetaffinity(0, &one); err != nil {
				return
			}
			defer unix.SchedSetaffinity(0, &old)
		}
		for {
			_, _, errno = unix.Syscall(unix.SYS_BPF, bpfProgTestRun, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
			if errno != unix.EINTR {
				break
			}
		}
	})
	runtime.KeepAlive(frame)
	runtime.KeepAlive(&ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("benchmark %s: pin to CPU %d: %w", h, cpu, err)
	}
	if errno != 0 {
		return 0, 0, fmt.Errorf("benchmark %s: BPF_PROG_TEST_RUN: %w", h, errno)
	}
	return attr.retval, time.Duration(attr.duration), nil
}
