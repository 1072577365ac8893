"""The Python module of one device type: ``loom.cuda`` and ``loom.<name>`` for each loaded backend (``loom.vdev``).

Every such module is built by :func:`device_module` from this one implementation over loom._C's device-layer
bindings, so a vendor's backend gets ``torch.cuda``'s API (devices, streams, events, memory statistics) without
writing Python. ``loom.cuda`` exists even with no CUDA backend: ``is_available()`` is then False and
``device_count()`` 0, the memory counters read 0, and calls that need a device raise ``RuntimeError``.
"""
import contextlib
import sys
import types

from loom import _C


class _Unavailable(RuntimeError):
    pass


def device_module(name):
    """The module ``loom.<name>``, created on first use and shared afterwards (also as ``sys.modules``)."""
    qualified = f"loom.{name}"
    module = sys.modules.get(qualified)
    if isinstance(module, _DeviceModule):
        return module
    module = _DeviceModule(name)
    sys.modules[qualified] = module
    setattr(sys.modules["loom"], name, module)
    return module


class _DeviceModule(types.ModuleType):
    """A device type's module; its functions and classes are bound to the type's name."""

    def __init__(self, name):
        super().__init__(f"loom.{name}", f"loom.{name}: devices, streams, events and memory of the '{name}' "
                                         "backend (as torch.cuda).")
        self.__file__ = __file__
        _populate(self, name)


def _populate(module, name):  # noqa: C901  (one closure per public name, as torch.cuda's module-level functions)
    def check():
        if not _C._has_backend(name):
            raise _Unavailable(f"loom.{name}: no '{name}' backend is loaded (load one with loom.backends.load, or "
                               f"install a package that provides it)")

    def as_device(device, what="device"):
        """A concrete loom.device of this type from None (the current device), an int, a str or a loom.device."""
        check()
        if device is None or (isinstance(device, int) and device == -1):
            return _C.device(name, _C._current_device(name))
        if isinstance(device, int) and not isinstance(device, bool):
            return _C.device(name, device)
        if isinstance(device, str):
            device = _C.device(device)
        if not isinstance(device, _C.device):
            raise TypeError(f"loom.{name}: expected a {what} index, name or loom.device, got {type(device).__name__}")
        if device.type != name:
            raise ValueError(f"loom.{name}: expected a '{name}' device, got '{device}'")
        return _C.device(name, _C._current_device(name) if device.index is None else device.index)

    # ---- devices ----

    def is_available():
        """Whether the backend is loaded and has at least one usable device (never raises)."""
        return bool(_C._is_available(name)) and device_count() > 0

    def device_count():
        """The number of devices (0 when the backend is not loaded or has no hardware; never raises)."""
        return int(_C._device_count(name)) if _C._is_available(name) else 0

    def is_initialized():
        return is_available()

    def init():
        check()

    def current_device():
        """The calling thread's current device index."""
        check()
        return _C._current_device(name)

    def set_device(device):
        """Makes ``device`` (an index, name or loom.device) current for this thread; a negative index is a no-op."""
        if isinstance(device, int) and device < 0:
            return
        _C._set_device(as_device(device))

    class device:  # noqa: N801  (torch.cuda.device)
        """Context manager that makes a device current and restores the previous one on exit."""

        def __init__(self, device):
            negative = isinstance(device, int) and device < 0
            self.index = None if device is None or negative else as_device(device).index
            self.previous = -1

        def __enter__(self):
            if self.index is not None:
                self.previous = current_device()
                _C._set_device(_C.device(name, self.index))
            return self

        def __exit__(self, *exc):
            if self.index is not None:
                _C._set_device(_C.device(name, self.previous))
            return False

    class device_of(device):  # noqa: N801
        """``device`` of a tensor's device (a no-op for a tensor on another device type)."""

        def __init__(self, tensor):
            super().__init__(tensor.get_device() if tensor.device.type == name else None)

    def synchronize(device=None):
        """Waits for all work queued on the device's current stream."""
        _C._synchronize(as_device(device))

    # ---- streams and events ----

    class Stream:
        """An ordered queue of work on one device (``Stream(device=None, priority=0)``); id 0 is the default stream.

        As in PyTorch, a stream lives until the process ends (tensors' memory may still be tied to it), so make
        streams once and reuse them.
        """

        def __init__(self, device=None, priority=0, **kwargs):
            if "_id" in kwargs:  # an existing stream (current_stream, default_stream)
                self.device, self.stream_id = kwargs["_device"], kwargs["_id"]
            else:
                self.device = as_device(device)
                self.stream_id = _C._create_stream(self.device, priority)
            self.priority = priority

        def query(self):
            """True when all work queued on the stream so far has finished."""
            return bool(_C._query_stream(self.device, self.stream_id))

        def synchronize(self):
            """Blocks until all work queued on the stream so far has finished."""
            _C._synchronize_stream(self.device, self.stream_id)

        def wait_event(self, event):
            """Work queued on this stream after this call waits for the event's recorded work."""
            event.wait(self)

        def wait_stream(self, stream):
            """Work queued on this stream after this call waits for all work queued on ``stream`` so far."""
            self.wait_event(stream.record_event())

        def record_event(self, event=None):
            """Records ``event`` (a new one when None) on this stream and returns it."""
            event = Event() if event is None else event
            event.record(self)
            return event

        def __eq__(self, other):
            return isinstance(other, Stream) and (self.device, self.stream_id) == (other.device, other.stream_id)

        def __hash__(self):
            return hash((str(self.device), self.stream_id))

        def __repr__(self):
            return f"<loom.{name}.Stream device={self.device} stream_id={self.stream_id}>"


    def current_stream(device=None):
        """The calling thread's current stream on ``device``."""
        dev, stream_id = _C._current_stream(as_device(device))
        return Stream(_device=dev, _id=stream_id)

    def default_stream(device=None):
        """The device's default stream (id 0)."""
        return Stream(_device=as_device(device), _id=0)

    def set_stream(stream):
        """Makes ``stream`` current on its device (None: no-op)."""
        if stream is not None:
            _C._set_current_stream(stream.device, stream.stream_id)

    class StreamContext:
        """Makes a stream current (and its device current) inside a ``with`` block; ``None`` does nothing."""

        def __init__(self, stream):
            self.stream = stream
            self.saved = None

        def __enter__(self):
            if self.stream is None:
                return self
            previous_device = current_device()
            _C._set_device(self.stream.device)
            self.saved = (previous_device, current_stream(self.stream.device))
            set_stream(self.stream)
            return self

        def __exit__(self, *exc):
            if self.saved is not None:
                previous_device, previous_stream = self.saved
                set_stream(previous_stream)
                _C._set_device(_C.device(name, previous_device))
                self.saved = None
            return False

    def stream(stream):
        """``with loom.<device>.stream(s):`` queues the block's work on ``s``."""
        return StreamContext(stream)

    class Event:
        """A marker in a stream (``Event(enable_timing=False)``), created on its stream's device when first
        recorded, as CUDA events are. An event never recorded counts as done."""

        def __init__(self, enable_timing=False, blocking=False, interprocess=False):
            if interprocess:
                raise NotImplementedError(f"loom.{name}.Event: interprocess events are not supported")
            self.enable_timing = enable_timing
            self._handle = None
            self.device = None

        def record(self, stream=None):
            """Records the work queued on ``stream`` (the current stream) so far."""
            stream = current_stream() if stream is None else stream
            if self._handle is None:
                self._handle = _C._create_event(stream.device, self.enable_timing)
                self.device = stream.device
            elif stream.device != self.device:
                raise ValueError(f"loom.{name}.Event: the event belongs to {self.device} and cannot be recorded on "
                                 f"a stream of {stream.device}")
            _C._record_event(self._handle, stream.device, stream.stream_id)

        def wait(self, stream=None):
            """Makes work queued on ``stream`` (the current stream) after this call wait for the event."""
            if self._handle is None:
                return
            stream = current_stream() if stream is None else stream
            _C._stream_wait_event(stream.device, stream.stream_id, self._handle)

        def query(self):
            """True when the recorded work has finished (or nothing was recorded)."""
            return self._handle is None or bool(_C._query_event(name, self._handle))

        def synchronize(self):
            """Blocks until the recorded work has finished."""
            if self._handle is not None:
                _C._synchronize_event(name, self._handle)

        def elapsed_time(self, end_event):
            """Milliseconds from this event to ``end_event`` (both recorded, finished, with enable_timing)."""
            if not (self.enable_timing and end_event.enable_timing):
                raise RuntimeError(f"loom.{name}.Event.elapsed_time: both events must be created with "
                                   "enable_timing=True")
            if self._handle is None or end_event._handle is None:
                raise RuntimeError(f"loom.{name}.Event.elapsed_time: both events must be recorded first")
            return float(_C._elapsed_ms(name, self._handle, end_event._handle))

        def __repr__(self):
            state = "unrecorded" if self._handle is None else f"device={self.device}"
            return f"<loom.{name}.Event {state}>"

        def __del__(self):
            if getattr(self, "_handle", None) is not None and _C is not None:
                with contextlib.suppress(Exception):
                    _C._destroy_event(name, self._handle)

    # ---- memory ----

    def _stats(device):
        return _C._memory_stats(as_device(device)) if _C._has_backend(name) else None

    def memory_stats(device=None):
        """The allocator's counters under PyTorch's key names ({} when the backend is not loaded)."""
        s = _stats(device)
        if s is None:
            return {}
        return dict(sorted({
            "allocated_bytes.all.current": s["allocated_bytes"],
            "allocated_bytes.all.peak": s["peak_allocated_bytes"],
            "reserved_bytes.all.current": s["reserved_bytes"],
            "reserved_bytes.all.peak": s["peak_reserved_bytes"],
            "allocation.all.allocated": s["num_allocs"],
            "allocation.all.freed": s["num_frees"],
            "allocation.all.current": s["num_allocs"] - s["num_frees"],
        }.items()))

    def _counter(key):
        def read(device=None):
            s = _stats(device)
            return 0 if s is None else int(s[key])
        read.__name__ = read.__qualname__ = key
        return read

    memory_allocated = _counter("allocated_bytes")
    max_memory_allocated = _counter("peak_allocated_bytes")
    memory_reserved = _counter("reserved_bytes")
    max_memory_reserved = _counter("peak_reserved_bytes")
    memory_allocated.__doc__ = "Bytes of device memory held by tensors."
    max_memory_allocated.__doc__ = "Peak of memory_allocated since the start or reset_peak_memory_stats."
    memory_reserved.__doc__ = "Bytes the allocator holds (held by tensors plus cached)."
    max_memory_reserved.__doc__ = "Peak of memory_reserved since the start or reset_peak_memory_stats."

    def reset_peak_memory_stats(device=None):
        if _C._has_backend(name):
            _C._reset_peak_memory_stats(as_device(device))

    def empty_cache():
        """Gives the allocator's cached, unused blocks back to the device (a no-op without the backend)."""
        if _C._has_backend(name):
            _C._empty_cache(name)

    # ---- random numbers and capabilities ----

    def manual_seed(seed):
        """Seeds the current device's generator (each device has its own stream; loom.manual_seed seeds them all).
        Without the backend it does nothing: loom.manual_seed's seed applies once the device's generator exists."""
        if _C._has_backend(name) and device_count() > 0:
            _C._device_generator(as_device(None)).manual_seed(int(seed))

    def manual_seed_all(seed):
        """Seeds the generator of every device of this type."""
        if _C._has_backend(name):
            for index in range(device_count()):
                _C._device_generator(_C.device(name, index)).manual_seed(int(seed))

    def initial_seed():
        check()
        return _C._device_generator(as_device(None)).initial_seed()

    def get_rng_state(device=None):
        """The (seed, offset) state of the device's generator, as a list of two integers."""
        check()
        return _C._device_generator(as_device(device)).get_state()

    def set_rng_state(new_state, device=None):
        check()
        _C._device_generator(as_device(device)).set_state(list(new_state))

    def is_bf16_supported(including_emulation=True):
        """Whether bfloat16 tensors can be used on the device (False without one)."""
        return is_available()

    def get_device_name(device=None):
        return str(as_device(device))

    exported = dict(locals())
    for key in ("module", "name", "check", "as_device", "exported", "_stats", "_counter", "key"):
        exported.pop(key, None)
    for key, value in exported.items():
        if isinstance(value, type):
            value.__qualname__ = value.__name__
            value.__module__ = f"loom.{name}"
        setattr(module, key, value)
    module.__all__ = sorted(k for k in exported if not k.startswith("_"))
