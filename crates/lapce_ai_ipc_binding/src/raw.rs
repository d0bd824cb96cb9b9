//! Every `unsafe` block of the binding: raw Node-API calls that napi-rs does not wrap the way we
//! need, and libuv's `uv_poll`, which Node exports to addons but napi-rs does not expose.
//!
//! Why raw here:
//! * napi-rs's external `ArrayBuffer` silently copies when external buffers are refused (V8
//!   sandbox); a copy of a *ring* is a stale snapshot, so we must see the refusal and fall back
//!   explicitly.
//! * A `uv_poll` on the doorbell lets the event loop itself wake us (epoll), with no thread hop;
//!   see `wake.rs` for the measurements behind that choice.

use std::ffi::{c_int, c_void};
use std::os::fd::RawFd;
use std::ptr;
use std::sync::{Arc, Mutex};

use lapce_ai_transport::shm::Mapping;
use napi::bindgen_prelude::{Int32ArraySlice, ToNapiValue, TypeName, Uint8ArraySlice, ValidateNapiValue};
use napi::{sys, Env, ValueType};

use crate::error::{io, Result};

fn check(status: sys::napi_status, what: &str) -> Result<()> {
    if status == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(io(format!("{what} failed with napi status {status}")))
    }
}

/// Takes ownership of an inherited fd number (`NativeControlStream.fromFd`).
pub fn adopt_fd(fd: RawFd) -> std::os::fd::OwnedFd {
    // SAFETY: the JS caller hands over an fd it owns (inherited, e.g. stdio[3]) and promises not
    // to use it again; `fd >= 0` was checked by the caller.
    unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) }
}

/// A JS value made by raw Node-API calls, returned to JS as is.
pub struct RawValue(pub sys::napi_value);

impl ToNapiValue for RawValue {
    unsafe fn to_napi_value(_env: sys::napi_env, val: Self) -> napi::Result<sys::napi_value> {
        Ok(val.0)
    }
}

impl TypeName for RawValue {
    fn type_name() -> &'static str {
        "ArrayBuffer"
    }
    fn value_type() -> ValueType {
        ValueType::Object
    }
}

impl ValidateNapiValue for RawValue {}

/// The elements of an `Int32Array` argument, writable.
pub fn i32_slice_mut<'a>(a: &'a mut Int32ArraySlice<'_>) -> &'a mut [i32] {
    // SAFETY: JS runs on one thread and is blocked in the native call that received `a`, so
    // nothing else reads or writes the array while this borrow (bounded by that call) lives.
    unsafe { a.as_mut() }
}

/// The bytes of a `Uint8Array` argument, writable (same reasoning as [`i32_slice_mut`]).
pub fn u8_slice_mut<'a>(a: &'a mut Uint8ArraySlice<'_>) -> &'a mut [u8] {
    // SAFETY: as for `i32_slice_mut`.
    unsafe { a.as_mut() }
}

/// A strong reference to a JS value, deleted explicitly on the JS thread.
pub struct JsRef {
    env: sys::napi_env,
    raw: sys::napi_ref,
}

impl JsRef {
    pub fn new(env: sys::napi_env, value: sys::napi_value) -> Result<Self> {
        let mut raw = ptr::null_mut();
        // SAFETY: called on the JS thread with a live env and a value from the current scope.
        check(
            unsafe { sys::napi_create_reference(env, value, 1, &mut raw) },
            "napi_create_reference",
        )?;
        Ok(JsRef { env, raw })
    }

    pub fn value(&self) -> Result<sys::napi_value> {
        let mut v = ptr::null_mut();
        // SAFETY: the reference is alive (deleted only in `drop`), JS thread.
        check(
            unsafe { sys::napi_get_reference_value(self.env, self.raw, &mut v) },
            "napi_get_reference_value",
        )?;
        Ok(v)
    }
}

impl Drop for JsRef {
    fn drop(&mut self) {
        // SAFETY: JsRef values live in objects owned by JS and are dropped on the JS thread
        // (explicit close or GC finalizer); each reference is deleted exactly once.
        unsafe { sys::napi_delete_reference(self.env, self.raw) };
    }
}

/// A mapping lent to a JS external `ArrayBuffer`: held both by the buffer's finalizer and by
/// the [`ExternalBuffer`] that made it, so whichever comes first (an explicit release at close,
/// or garbage collection) drops it, and the mapping is unmapped exactly once.
type Lent = Arc<Mutex<Option<Arc<Mapping>>>>;

unsafe extern "C" fn release_mapping(_env: sys::napi_env, _data: *mut c_void, hint: *mut c_void) {
    // SAFETY: `hint` is the `Box<Lent>` leaked in `ExternalBuffer::new`, and V8 calls the
    // finalizer exactly once, after which no view of the buffer exists.
    drop(unsafe { Box::from_raw(hint.cast::<Lent>()) });
}

/// One external `ArrayBuffer` over a whole mapping, so JS can read and write ring memory in
/// place through views. [`ExternalBuffer::release`] detaches it and unmaps at once, without
/// waiting for garbage collection.
pub struct ExternalBuffer {
    value: JsRef,
    lent: Lent,
}

impl ExternalBuffer {
    /// Wraps `mapping`. Returns `None` where the runtime refuses external buffers (V8 sandbox);
    /// callers then copy.
    pub fn new(env: &Env, mapping: &Arc<Mapping>) -> Result<Option<Self>> {
        let lent: Lent = Arc::new(Mutex::new(Some(mapping.clone())));
        let hint = Box::into_raw(Box::new(lent.clone()));
        let mut value = ptr::null_mut();
        // SAFETY: the pointer is valid for `len` bytes for as long as the mapping lives; it is
        // dropped only by `release` (after the buffer is detached, so no view can reach it) or
        // by the finalizer (when the buffer is gone). Each mapping is wrapped once (callers
        // cache the value): wrapping one address twice has aborted older Nodes.
        let status = unsafe {
            sys::napi_create_external_arraybuffer(
                env.raw(),
                mapping.as_ptr().cast(),
                mapping.len(),
                Some(release_mapping),
                hint.cast(),
                &mut value,
            )
        };
        if status != sys::Status::napi_ok {
            // SAFETY: the finalizer was not registered, so the box is still ours to free.
            drop(unsafe { Box::from_raw(hint) });
            if status == sys::Status::napi_no_external_buffers_allowed {
                return Ok(None);
            }
            check(status, "napi_create_external_arraybuffer")?;
        }
        Ok(Some(ExternalBuffer {
            value: JsRef::new(env.raw(), value)?,
            lent,
        }))
    }

    /// The `ArrayBuffer`.
    pub fn value(&self) -> Result<sys::napi_value> {
        self.value.value()
    }

    /// Detaches the buffer, so every view of it reads as empty and none can touch ring memory
    /// again, then unmaps the region now. If the runtime refuses to detach, the mapping is left
    /// to the finalizer (a view may still reach it).
    pub fn release(self, env: sys::napi_env) {
        let Ok(v) = self.value.value() else { return };
        // SAFETY: JS thread, live value (our reference holds it).
        let status = unsafe { sys::napi_detach_arraybuffer(env, v) };
        if status == sys::Status::napi_ok {
            if let Ok(mut lent) = self.lent.lock() {
                lent.take();
            }
        }
    }
}

// ---- libuv -------------------------------------------------------------------------------

#[allow(non_camel_case_types)]
type uv_handle_t = c_void;
const UV_POLL: c_int = 8;
const UV_READABLE: c_int = 1;
const UV_DISCONNECT: c_int = 4;

extern "C" {
    // Exported by the node binary, which every addon is loaded into.
    fn uv_handle_size(kind: c_int) -> usize;
    fn uv_poll_init(lp: *mut sys::uv_loop_s, handle: *mut uv_handle_t, fd: c_int) -> c_int;
    fn uv_poll_start(handle: *mut uv_handle_t, events: c_int, cb: unsafe extern "C" fn(*mut uv_handle_t, c_int, c_int)) -> c_int;
    fn uv_poll_stop(handle: *mut uv_handle_t) -> c_int;
    fn uv_close(handle: *mut uv_handle_t, cb: unsafe extern "C" fn(*mut uv_handle_t));
    fn uv_handle_set_data(handle: *mut uv_handle_t, data: *mut c_void);
    fn uv_handle_get_data(handle: *const uv_handle_t) -> *mut c_void;
    fn uv_ref(handle: *mut uv_handle_t);
    fn uv_unref(handle: *mut uv_handle_t);
}

struct PollState {
    env: sys::napi_env,
    callback: JsRef,
    resource: JsRef,
    context: sys::napi_async_context,
}

/// A started `uv_poll` on an fd that calls a JS function (with no arguments) from the event
/// loop each time the fd is readable or hung up. Must be closed before the fd is.
pub struct UvPoll {
    handle: *mut uv_handle_t,
}

fn handle_layout() -> std::alloc::Layout {
    // SAFETY: a pure query of a libuv constant.
    let size = unsafe { uv_handle_size(UV_POLL) };
    std::alloc::Layout::from_size_align(size, 16).expect("uv_poll_t layout")
}

unsafe extern "C" fn on_poll(handle: *mut uv_handle_t, _status: c_int, _events: c_int) {
    // SAFETY: data was set to a live `PollState` before starting and is freed only after
    // `uv_poll_stop`, after which libuv makes no more callbacks.
    let state = unsafe { &*(uv_handle_get_data(handle) as *const PollState) };
    let env = state.env;
    // SAFETY: we are on the loop thread, between JS turns; a handle scope bounds the values
    // made here, and `napi_make_callback` runs microtasks and nextTicks after the call as
    // Node does for its own I/O callbacks.
    unsafe {
        let mut scope = ptr::null_mut();
        if sys::napi_open_handle_scope(env, &mut scope) != sys::Status::napi_ok {
            return;
        }
        if let (Ok(func), Ok(recv)) = (state.callback.value(), state.resource.value()) {
            let mut result = ptr::null_mut();
            let status = sys::napi_make_callback(env, state.context, recv, func, 0, ptr::null(), &mut result);
            if status == sys::Status::napi_pending_exception {
                let mut exc = ptr::null_mut();
                sys::napi_get_and_clear_last_exception(env, &mut exc);
                sys::napi_fatal_exception(env, exc);
            }
        }
        sys::napi_close_handle_scope(env, scope);
    }
}

unsafe extern "C" fn on_close(handle: *mut uv_handle_t) {
    // SAFETY: libuv is done with the handle once the close callback runs; it was allocated by
    // `UvPoll::start` with this layout, and its data pointer was already cleared and freed.
    unsafe { std::alloc::dealloc(handle.cast(), handle_layout()) };
}

impl UvPoll {
    /// Starts watching `fd` for readability on Node's main loop.
    pub fn start(env: &Env, fd: RawFd, callback: sys::napi_value, name: &str) -> Result<Self> {
        let env_raw = env.raw();
        let lp = env.get_uv_event_loop().map_err(crate::error::napi_err)?;
        let mut resource = ptr::null_mut();
        let mut resource_name = ptr::null_mut();
        let mut context = ptr::null_mut();
        // SAFETY: plain Node-API calls on the JS thread with out-pointers we own.
        unsafe {
            check(sys::napi_create_object(env_raw, &mut resource), "napi_create_object")?;
            check(
                sys::napi_create_string_utf8(env_raw, name.as_ptr().cast(), name.len() as isize, &mut resource_name),
                "napi_create_string_utf8",
            )?;
            check(
                sys::napi_async_init(env_raw, resource, resource_name, &mut context),
                "napi_async_init",
            )?;
        }
        let state = Box::new(PollState {
            env: env_raw,
            callback: JsRef::new(env_raw, callback)?,
            resource: JsRef::new(env_raw, resource)?,
            context,
        });
        let layout = handle_layout();
        // SAFETY: non-zero layout from libuv's own size query.
        let handle = unsafe { std::alloc::alloc(layout) }.cast::<uv_handle_t>();
        if handle.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        // SAFETY: `handle` is fresh memory of the size libuv asked for; the loop is Node's own.
        let rc = unsafe { uv_poll_init(lp, handle, fd) };
        if rc != 0 {
            // SAFETY: init failed, so libuv never registered the handle: free it directly.
            unsafe {
                std::alloc::dealloc(handle.cast(), layout);
                sys::napi_async_destroy(env_raw, context);
            }
            return Err(io(format!("uv_poll_init failed ({rc})")));
        }
        // SAFETY: the handle is initialised; the state outlives it (freed in `close`, after stop).
        unsafe {
            uv_handle_set_data(handle, Box::into_raw(state).cast());
            let rc = uv_poll_start(handle, UV_READABLE | UV_DISCONNECT, on_poll);
            if rc != 0 {
                let poll = UvPoll { handle };
                poll.close();
                return Err(io(format!("uv_poll_start failed ({rc})")));
            }
        }
        Ok(UvPoll { handle })
    }

    /// Whether the watch keeps the event loop (and so the process) alive.
    pub fn set_ref(&self, keep_alive: bool) {
        // SAFETY: the handle is open until `close` consumes `self`.
        unsafe {
            if keep_alive {
                uv_ref(self.handle)
            } else {
                uv_unref(self.handle)
            }
        }
    }

    /// Stops watching and frees everything. No callback runs after this returns.
    pub fn close(self) {
        // SAFETY: JS thread. After `uv_poll_stop` libuv makes no more callbacks, so the state can
        // be freed now; the handle memory itself is freed by `on_close` once libuv lets go.
        unsafe {
            uv_poll_stop(self.handle);
            let state = uv_handle_get_data(self.handle).cast::<PollState>();
            uv_handle_set_data(self.handle, ptr::null_mut());
            if !state.is_null() {
                let state = Box::from_raw(state);
                sys::napi_async_destroy(state.env, state.context);
                drop(state);
            }
            uv_close(self.handle, on_close);
        }
    }
}
