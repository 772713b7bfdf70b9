"""vSphere (vCenter / ESXi) adapter: find VMs, read their state, and run the four VM actions.

The action catalogue calls this for ``vsphere.reset_vm``, ``vsphere.reboot_guest``,
``vsphere.power_on`` and ``vsphere.power_off``. It speaks the vSphere SOAP API
through pyvmomi, which is synchronous: callers run it in a thread (the bot) or in the worker.

Why it is shaped the way it is:

* **One session, reused.** Logging in costs several round trips and vCenter limits sessions
  per user, so the adapter logs in lazily on first use and keeps the session. vCenter drops
  idle sessions (and an operator may terminate one); the first call that gets
  ``NotAuthenticated`` logs in again and repeats itself *once* — that fault means the call was
  refused before it did anything, so repeating it cannot run an action twice.
* **Every failure is a** :class:`VSphereError` **with a reason and a one-line message** a person
  can act on in Slack ("VM web-01 is already powered off"); ``transient`` tells the worker
  whether a retry may help (only an unreachable or timed-out vSphere).
* **Writes go to vSphere and vSphere decides.** A real power action is sent as is and its
  ``InvalidPowerState`` fault is turned into the message, rather than pre-checking the state
  and racing whoever else is clicking in the vSphere client. A dry run sends nothing: it finds
  the VM and says whether its current state would allow the action and which call it would
  send (``ActionOutcome.request``), which is what shadow mode records.
* **Tasks are awaited with a deadline.** Power operations are vSphere tasks; the adapter polls
  the task's ``info`` with a growing interval (no busy loop, no unbounded
  ``WaitForUpdates``) and gives up after ``task_timeout`` with a ``timeout`` error naming the
  task, which may still finish in vCenter.
* **A wedged vCenter cannot hang it.** A host that accepts TCP and never answers would hang
  pyVim's API-version discovery for ever (it opens its connection with no timeout), with the
  adapter's lock held. Every socket the adapter opens times out after ``request_timeout``
  (the SSL context sets it on each socket it wraps, discovery's included), and a caller
  waits at most that long for a login another thread is doing before failing ``timeout``.
* **VMs are found through a container view** created once per session, asking only for the
  ``name`` of each VM, then reading the few properties needed from the one VM that matched —
  no inventory traversal per call. Two VMs with the same name are refused rather than guessed.
"""

from __future__ import annotations

import http.client
import logging
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import pyVim.connect
from pyVmomi import vim, vmodl

__all__ = [
    "ActionOutcome",
    "VMInfo",
    "VSphereAdapter",
    "VSphereError",
    "VSphereNotConfigured",
]

log = logging.getLogger(__name__)

Reason = Literal[
    "not_found",
    "invalid_power_state",
    "invalid_login",
    "tools_not_running",
    "unreachable",
    "timeout",
    "error",
]
_TRANSIENT: frozenset[str] = frozenset({"unreachable", "timeout"})

POWERED_ON = "poweredOn"
POWERED_OFF = "poweredOff"
SUSPENDED = "suspended"
TOOLS_RUNNING = "guestToolsRunning"

_HUMAN_POWER = {POWERED_ON: "powered on", POWERED_OFF: "powered off", SUSPENDED: "suspended"}
_HUMAN_TOOLS = {
    "guestToolsRunning": "running",
    "guestToolsNotRunning": "not_running",
    "guestToolsExecutingScripts": "starting",
}
_VM_PROPERTIES = ["name", "runtime.powerState", "guest.toolsRunningStatus", "guest.ipAddress"]

T = TypeVar("T")

# pyVim and pyVmomi's data-object constructors are untyped; calling them through these
# Any-typed names keeps the rest of the module type-checked.
SmartConnect: Callable[..., Any] = pyVim.connect.SmartConnect
Disconnect: Callable[..., Any] = pyVim.connect.Disconnect
_PC: Any = vmodl.query.PropertyCollector
_Task: Any = vim.Task
_VirtualMachine: Any = vim.VirtualMachine


class VSphereError(Exception):
    """A vSphere call failed; ``str(err)`` is one line meant for the person who asked.

    ``reason`` is one of :data:`Reason` so callers can branch without parsing messages;
    ``transient`` is True only when retrying later may succeed (vSphere unreachable or slow).
    """

    def __init__(self, reason: Reason, message: str, *, transient: bool | None = None) -> None:
        super().__init__(message)
        self.reason: Reason = reason
        self.message = message
        self.transient = reason in _TRANSIENT if transient is None else transient

    def __repr__(self) -> str:
        return f"VSphereError({self.reason!r}, {self.message!r})"


class VSphereNotConfigured(Exception):
    """The environment does not say which vSphere to use (VSPHERE_HOST etc. unset or invalid).

    Separate from :class:`VSphereError` because it is an operator's set-up question, not a
    failure of a call: the bot shows it in ``/infraai status`` instead of failing actions.
    """


@dataclass
class ActionOutcome:
    """What an action did, or in a dry run would do.

    ``request`` is the exact call sent (or that would be sent), e.g.
    ``ResetVM_Task on VirtualMachine:vm-54 (web-01)``: the audit trail and shadow mode show it.
    """

    summary: str
    request: str | None
    data: Any = None
    dry_run: bool = False


@dataclass(frozen=True)
class VMInfo:
    """A VM as the adapter sees it at one moment (plain data: no live pyvmomi object)."""

    name: str
    moid: str
    power_state: str
    tools_running_status: str | None
    guest_ip: str | None

    @property
    def tools_running(self) -> bool:
        return self.tools_running_status == TOOLS_RUNNING

    def describe(self) -> str:
        return f"VirtualMachine:{self.moid} ({self.name})"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "moid": self.moid,
            "power_state": self.power_state,
            "tools": _HUMAN_TOOLS.get(self.tools_running_status or "", "unknown"),
            "guest_ip": self.guest_ip,
        }


def _human_power(state: str | None) -> str:
    return _HUMAN_POWER.get(state or "", f"in power state {state!r}")


# How each action reads in messages, the SOAP method it sends, and the power states it needs.
_ACTIONS: dict[str, tuple[str, str]] = {
    # action: (verb for messages, SOAP method)
    "reset": ("reset", "ResetVM_Task"),
    "power_on": ("power on", "PowerOnVM_Task"),
    "power_off": ("power off", "PowerOffVM_Task"),
    "reboot_guest": ("reboot the guest OS of", "RebootGuest"),
}


def _power_refusal(action: str, vm: str, state: str | None) -> str | None:
    """Why ``action`` cannot run on a VM in ``state`` (None: it can), in vSphere's own rules."""
    if action == "power_off" and state == POWERED_OFF:
        return f"VM {vm} is already powered off"
    if action == "power_on" and state == POWERED_ON:
        return f"VM {vm} is already powered on"
    if action == "reset" and state != POWERED_ON:
        return f"VM {vm} is {_human_power(state)}: a reset needs it powered on (use power_on)"
    if action == "reboot_guest" and state != POWERED_ON:
        return f"VM {vm} is {_human_power(state)}: a guest reboot needs it powered on"
    return None


def _parse_host(value: str) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]:port`` or a URL → (host, port); 443 by default."""
    text = value.strip()
    try:
        parts = urlsplit(text if "://" in text else f"//{text}")
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise ValueError(f"invalid vSphere host {value!r}: {exc}") from None
    if not host:
        raise ValueError(f"invalid vSphere host {value!r}: no host name")
    return host, port or 443


def _parse_bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"", "0", "false", "no", "off"}:
        return False
    raise VSphereNotConfigured(f"{name} must be true or false, got {value!r}")


class _TimeoutSSLContext(ssl.SSLContext):
    """An SSL context whose sockets time out after ``timeout`` seconds.

    pyVim's version discovery opens an ``HTTPSConnection`` without a timeout and takes no
    option for one; it does take an SSL context, and every socket of the login goes through
    the context's ``wrap_socket`` — so that is where the timeout is set.
    """

    timeout: float

    def wrap_socket(self, sock: Any, *args: Any, **kwargs: Any) -> Any:
        sock.settimeout(self.timeout)
        return super().wrap_socket(sock, *args, **kwargs)


def _ssl_context(*, insecure: bool, timeout: float) -> _TimeoutSSLContext:
    """Verifying (system CAs; SSL_CERT_FILE honoured) unless ``insecure``; always timed out."""
    context = _TimeoutSSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.timeout = timeout
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context.load_default_certs()
    return context


class _Session:
    """One logged-in vSphere session and the objects that belong to it."""

    def __init__(self, si: Any, generation: int) -> None:
        self.si = si
        self.generation = generation
        self.content = si.RetrieveContent()
        # Views live inside the session: created once here, gone when the session is.
        self.vm_view = self.content.viewManager.CreateContainerView(
            self.content.rootFolder, [vim.VirtualMachine], True
        )

    def owns(self, obj: Any) -> bool:
        """True when ``obj`` is one of this session's own objects (e.g. the view)."""
        return bool(getattr(obj, "_moId", None) == self.vm_view._moId)


class VSphereAdapter:
    """A vCenter/ESXi connection with the VM actions InfraAI runs.

    Thread-safe: one session is shared; logging in (again) happens under a lock.
    """

    def __init__(
        self,
        *,
        host: str,
        user: str,
        password: str,
        insecure: bool = False,
        task_timeout: float = 120.0,
        request_timeout: float = 30.0,
    ) -> None:
        self.host, self.port = _parse_host(host)
        self.user = user
        self._password = password
        self.insecure = insecure
        self.task_timeout = task_timeout
        self.request_timeout = request_timeout
        self._lock = threading.Lock()
        self._session: _Session | None = None
        self._logins = 0
        self._close_requested = False

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> VSphereAdapter:
        """Build from VSPHERE_HOST / VSPHERE_USER / VSPHERE_PASSWORD / VSPHERE_INSECURE."""
        env = os.environ if environ is None else environ
        host = env.get("VSPHERE_HOST", "").strip()
        if not host:
            raise VSphereNotConfigured("VSPHERE_HOST is not set")
        user = env.get("VSPHERE_USER", "").strip()
        if not user:
            raise VSphereNotConfigured("VSPHERE_USER is not set")
        if "VSPHERE_PASSWORD" not in env:
            raise VSphereNotConfigured("VSPHERE_PASSWORD is not set")
        insecure = _parse_bool("VSPHERE_INSECURE", env.get("VSPHERE_INSECURE", ""))
        try:
            return cls(host=host, user=user, password=env["VSPHERE_PASSWORD"], insecure=insecure)
        except ValueError as exc:
            raise VSphereNotConfigured(f"VSPHERE_HOST: {exc}") from None

    @property
    def endpoint(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def logins(self) -> int:
        """How many times this adapter has logged in (1 while the first session lasts)."""
        return self._logins

    def __repr__(self) -> str:
        return f"VSphereAdapter(endpoint={self.endpoint!r}, user={self.user!r})"

    def __enter__(self) -> VSphereAdapter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---------------------------------------------------------------- session handling

    def close(self) -> None:
        """Log out (best effort: the session may already be gone).

        Never waits for a login in progress (a wedged vCenter would hold shutdown for the
        login's timeouts): that login logs out as soon as it ends instead.
        """
        # Others hold the lock for microseconds, a login for up to its timeouts.
        if not self._lock.acquire(timeout=min(1.0, self.request_timeout)):
            self._close_requested = True
            log.info("vSphere: closing while a login to %s runs; it ends logged out", self.endpoint)
            return
        try:
            session, self._session = self._session, None
        finally:
            self._lock.release()
        if session is not None:
            self._logout(session)

    def _logout(self, session: _Session) -> None:
        try:
            session.vm_view.DestroyView()
        except Exception:
            log.debug("vSphere: DestroyView failed on close", exc_info=True)
        try:
            Disconnect(session.si)
        except Exception:
            log.debug("vSphere: logout failed on close", exc_info=True)

    def _current(self) -> _Session:
        # Bounded wait: the login another thread is doing ends within a few request
        # timeouts, but a caller must not queue behind it for longer than one.
        if not self._lock.acquire(timeout=self.request_timeout):
            raise VSphereError(
                "timeout",
                f"vSphere at {self.endpoint} did not answer within {self.request_timeout:g} s "
                "(another caller's login is still waiting for it)",
            )
        try:
            if self._session is None:
                self._close_requested = False
                session = self._login()
                if self._close_requested:  # closed meanwhile: do not keep a session open
                    self._logout(session)
                    raise VSphereError("error", f"vSphere adapter for {self.endpoint} closed")
                self._session = session
            return self._session
        finally:
            self._lock.release()

    def _login(self) -> _Session:
        # SmartConnect's first request (API version discovery) has no timeout at all, so a
        # host that drops packets would hang it; a TCP connect with a timeout fails fast first.
        try:
            socket.create_connection((self.host, self.port), timeout=self.request_timeout).close()
        except OSError as exc:
            raise self._network_error(exc) from exc
        # Always our own context: it bounds every socket of the login (see _TimeoutSSLContext),
        # and pyVim would otherwise skip certificate checks for localhost/127.0.0.1.
        # disableSslCertValidation stays False: True would make pyVim replace the context.
        context = _ssl_context(insecure=self.insecure, timeout=self.request_timeout)
        try:
            si = SmartConnect(
                host=self.host,
                port=self.port,
                user=self.user,
                pwd=self._password,
                sslContext=context,
                disableSslCertValidation=False,
                httpConnectionTimeout=self.request_timeout,
            )
        except vim.fault.InvalidLogin:
            raise VSphereError(
                "invalid_login", f"vSphere login failed for user {self.user} at {self.endpoint}"
            ) from None
        except Exception as exc:
            raise self._translate(exc) from exc
        try:
            session = _Session(si, self._logins + 1)
        except Exception as exc:
            try:
                Disconnect(si)
            except Exception:
                log.debug("vSphere: logout after a failed session set-up failed", exc_info=True)
            raise self._translate(exc) from exc
        self._logins += 1
        log.info(
            "vSphere: logged in to %s as %s (login %d)", self.endpoint, self.user, self._logins
        )
        return session

    def _forget(self, session: _Session) -> None:
        """Drop a session vSphere no longer accepts, unless another thread already did."""
        if not self._lock.acquire(timeout=self.request_timeout):
            return  # another thread is logging in: its session replaces this one anyway
        try:
            if self._session is session:
                self._session = None
        finally:
            self._lock.release()

    def _invoke(self, fn: Callable[[_Session], T]) -> T:
        """Run ``fn`` on the session; on NotAuthenticated log in again and run it once more.

        vcsim (unlike vCenter) answers a property read through a dead session's view with
        ManagedObjectNotFound for the view, so that counts as a lost session too.
        """
        session = self._current()
        try:
            return fn(session)
        except vim.fault.NotAuthenticated:
            pass
        except vmodl.fault.ManagedObjectNotFound as fault:
            if not session.owns(fault.obj):
                raise
        log.info("vSphere: session on %s is no longer valid; logging in again", self.endpoint)
        self._forget(session)
        session = self._current()
        try:
            return fn(session)
        except vim.fault.NotAuthenticated:
            raise VSphereError(
                "error",
                f"vSphere at {self.endpoint} refused the session of user {self.user} "
                "right after a fresh login (NotAuthenticated)",
            ) from None

    # ---------------------------------------------------------------- error translation

    @contextmanager
    def _errors(self, action: str | None = None, vm: str | None = None) -> Iterator[None]:
        """Turn pyvmomi faults and socket errors into :class:`VSphereError`."""
        try:
            yield
        except VSphereError:
            raise
        except (vmodl.MethodFault, OSError, http.client.HTTPException) as exc:
            raise self._translate(exc, action, vm) from exc

    def _network_error(self, exc: BaseException) -> VSphereError:
        if isinstance(exc, ssl.SSLCertVerificationError):
            detail = exc.verify_message or str(exc)
            return VSphereError(
                "error",
                f"the TLS certificate of vSphere at {self.endpoint} is not trusted ({detail}); "
                "trust its CA (e.g. SSL_CERT_FILE) or set VSPHERE_INSECURE=true to skip the check",
            )
        if isinstance(exc, TimeoutError):
            return VSphereError(
                "timeout",
                f"vSphere at {self.endpoint} did not answer within {self.request_timeout:g} s",
            )
        if isinstance(exc, socket.gaierror):
            return VSphereError(
                "unreachable", f"cannot resolve vSphere host {self.host}: {exc.strerror or exc}"
            )
        detail = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        return VSphereError("unreachable", f"cannot reach vSphere at {self.endpoint}: {detail}")

    def _translate(
        self, exc: BaseException, action: str | None = None, vm: str | None = None
    ) -> VSphereError:
        if isinstance(exc, vim.fault.HostConnectFault) and exc.__context__ is not None:
            # pyVim.connect wraps the socket error of its first SOAP call in this fault.
            return self._translate(exc.__context__, action, vm)
        if isinstance(exc, (OSError, http.client.HTTPException)):
            return self._network_error(exc)
        if isinstance(exc, vmodl.MethodFault):
            return self._fault_error(exc, action, vm)
        if "is not a VIM server" in str(exc):
            return VSphereError(
                "error", f"{self.endpoint} answered, but it is not a vSphere SDK endpoint"
            )
        return VSphereError("error", f"vSphere call failed: {type(exc).__name__}: {exc}")

    def _fault_error(
        self, fault: vmodl.MethodFault, action: str | None, vm: str | None
    ) -> VSphereError:
        subject = f"VM {vm}" if vm else f"vSphere at {self.endpoint}"
        verb = _ACTIONS[action][0] if action in _ACTIONS else (action or "call")
        if isinstance(fault, vim.fault.InvalidPowerState):
            state = fault.existingState
            message = action and vm and _power_refusal(action, vm, state)
            if not message:
                message = f"{subject} is {_human_power(state)}: vSphere refused to {verb} it"
            return VSphereError("invalid_power_state", message)
        if isinstance(fault, vim.fault.ToolsUnavailable):
            return VSphereError(
                "tools_not_running", f"VMware Tools are not running in {subject}: cannot {verb} it"
            )
        if isinstance(fault, vim.fault.InvalidLogin):
            return VSphereError(
                "invalid_login", f"vSphere login failed for user {self.user} at {self.endpoint}"
            )
        if isinstance(fault, vim.fault.NotAuthenticated):
            return VSphereError(
                "error", f"vSphere at {self.endpoint} did not accept the session (NotAuthenticated)"
            )
        if isinstance(fault, vim.fault.NoPermission):
            privilege = fault.privilegeId or "a required privilege"
            return VSphereError(
                "error", f"vSphere user {self.user} lacks {privilege} to {verb} {subject}"
            )
        if isinstance(fault, vmodl.fault.ManagedObjectNotFound):
            return VSphereError("not_found", f"{subject} no longer exists in vSphere")
        if isinstance(fault, vim.fault.TaskInProgress):
            return VSphereError(
                "error", f"{subject} is busy with another vSphere task; try again when it finishes"
            )
        detail = str(getattr(fault, "msg", None) or "")
        name = type(fault).__name__.rsplit(".", 1)[-1]
        return VSphereError(
            "error",
            f"vSphere refused to {verb} {subject}: {name}" + (f": {detail}" if detail else ""),
        )

    # ---------------------------------------------------------------- reads

    def health(self) -> tuple[bool, str]:
        """(ok, one line) for ``/infraai status``: one cheap call, logging in if needed."""
        try:
            with self._errors():
                self._invoke(lambda s: s.si.CurrentTime())
                about = self._current().content.about
            return True, f"{about.fullName} at {self.endpoint} (API {about.apiVersion})"
        except VSphereError as err:
            return False, err.message
        except Exception as exc:  # health must never raise
            return False, f"vSphere health check failed: {type(exc).__name__}: {exc}"

    def find_vm(self, name: str) -> VMInfo:
        """The VM called ``name``; VSphereError ``not_found`` if none (``error`` if several)."""
        with self._errors(vm=name):
            return self._invoke(lambda s: self._lookup(s, name)[1])

    def list_vms(self) -> ActionOutcome:
        """Every VM with power state, tools status and guest IP (``data``), sorted by name."""
        with self._errors():
            vms = self._invoke(lambda s: [info for _, info in self._retrieve(s, _VM_PROPERTIES)])
        vms.sort(key=lambda info: (info.name, info.moid))
        on = sum(1 for info in vms if info.power_state == POWERED_ON)
        return ActionOutcome(
            summary=f"{len(vms)} VMs, {on} powered on",
            request="RetrievePropertiesEx on ContainerView(VirtualMachine)",
            data=[info.as_dict() for info in vms],
        )

    def _retrieve(self, session: _Session, paths: list[str], obj: Any = None) -> list[Any]:
        """[(vm object, VMInfo)] for every VM in the session's view, or for ``obj`` alone."""
        pc = _PC
        if obj is None:
            traversal = pc.TraversalSpec(
                name="view", path="view", type=vim.view.ContainerView, skip=False
            )
            object_spec = pc.ObjectSpec(obj=session.vm_view, skip=True, selectSet=[traversal])
        else:
            object_spec = pc.ObjectSpec(obj=obj, skip=False)
        spec = pc.FilterSpec(
            objectSet=[object_spec],
            propSet=[pc.PropertySpec(type=vim.VirtualMachine, pathSet=paths)],
        )
        collector = session.content.propertyCollector
        result = collector.RetrievePropertiesEx([spec], pc.RetrieveOptions(maxObjects=1000))
        found: list[Any] = []
        while result is not None:
            for content in result.objects:
                for missing in content.missingSet:
                    if isinstance(missing.fault, vim.fault.NotAuthenticated):
                        raise missing.fault
                props = {prop.name: prop.val for prop in content.propSet}
                info = VMInfo(
                    name=props.get("name", ""),
                    moid=content.obj._moId,
                    power_state=str(props.get("runtime.powerState", "")),
                    tools_running_status=props.get("guest.toolsRunningStatus"),
                    guest_ip=props.get("guest.ipAddress"),
                )
                found.append((content.obj, info))
            token = result.token
            result = collector.ContinueRetrievePropertiesEx(token) if token else None
        return found

    def _lookup(self, session: _Session, name: str) -> tuple[Any, VMInfo]:
        """Find by name through the view (names only), then read the one match's state."""
        matches = [vm for vm, info in self._retrieve(session, ["name"]) if info.name == name]
        if not matches:
            raise VSphereError("not_found", f"no VM named {name} in vSphere at {self.endpoint}")
        if len(matches) > 1:
            ids = ", ".join(sorted(vm._moId for vm in matches))
            raise VSphereError(
                "error", f"{len(matches)} VMs are named {name} ({ids}); refusing to guess which"
            )
        found = self._retrieve(session, _VM_PROPERTIES, obj=matches[0])
        if not found:
            raise VSphereError("not_found", f"VM {name} no longer exists in vSphere")
        vm, info = found[0]
        return vm, info

    def _vm_by_moid(self, session: _Session, moid: str) -> VMInfo:
        found = self._retrieve(session, _VM_PROPERTIES, obj=_VirtualMachine(moid, session.si._stub))
        if not found:
            raise VSphereError("not_found", f"VM {moid} no longer exists in vSphere")
        info: VMInfo = found[0][1]
        return info

    # ---------------------------------------------------------------- actions

    def reset_vm(self, vm: str, *, dry_run: bool = False) -> ActionOutcome:
        """Hard reset (like pressing the reset button): works without VMware Tools."""
        return self._power_action("reset", vm, dry_run)

    def power_on(self, vm: str, *, dry_run: bool = False) -> ActionOutcome:
        """Power the VM on."""
        return self._power_action("power_on", vm, dry_run)

    def power_off(self, vm: str, *, dry_run: bool = False) -> ActionOutcome:
        """Hard power off (not a guest shutdown)."""
        return self._power_action("power_off", vm, dry_run)

    def reboot_guest(self, vm: str, *, dry_run: bool = False) -> ActionOutcome:
        """Ask VMware Tools to reboot the guest OS cleanly.

        Needs the VM powered on and its tools running; refused up front otherwise (vSphere
        would refuse too, less clearly). RebootGuest is not a task: vSphere returns once the
        tools accepted the request, before the guest has rebooted.
        """
        verb, method = _ACTIONS["reboot_guest"]

        def go(session: _Session) -> tuple[VMInfo, str]:
            obj, info = self._lookup(session, vm)
            request = f"{method} on {info.describe()}"
            refusal = _power_refusal("reboot_guest", vm, info.power_state)
            if refusal:
                raise VSphereError("invalid_power_state", refusal)
            if not info.tools_running:
                raise VSphereError(
                    "tools_not_running",
                    f"VMware Tools are not running in VM {vm} "
                    f"({info.tools_running_status or 'status unknown'}): "
                    "a guest reboot needs them; reset_vm does a hard reset instead",
                )
            if not dry_run:
                obj.RebootGuest()
            return info, request

        with self._errors("reboot_guest", vm):
            info, request = self._invoke(go)
        data = {"vm": info.name, "moid": info.moid, "power_state": info.power_state}
        if dry_run:
            return ActionOutcome(
                summary=f"Dry run: would {verb} VM {vm} (powered on, VMware Tools running)",
                request=request,
                data=data,
                dry_run=True,
            )
        log.info("vSphere: sent %s", request)
        return ActionOutcome(
            summary=f"Asked VMware Tools to reboot the guest OS of VM {vm}",
            request=request,
            data=data,
        )

    def _power_action(self, action: str, vm: str, dry_run: bool) -> ActionOutcome:
        verb, method = _ACTIONS[action]

        def start(session: _Session) -> tuple[VMInfo, str | None]:
            obj, info = self._lookup(session, vm)
            if dry_run:
                refusal = _power_refusal(action, vm, info.power_state)
                if refusal:
                    raise VSphereError("invalid_power_state", refusal)
                return info, None
            task = getattr(obj, method)()
            return info, task._moId

        with self._errors(action, vm):
            before, task_id = self._invoke(start)
            request = f"{method} on {before.describe()}"
            data: dict[str, Any] = {
                "vm": before.name,
                "moid": before.moid,
                "power_state_before": before.power_state,
            }
            if task_id is None:
                data["power_state"] = before.power_state
                return ActionOutcome(
                    summary=f"Dry run: would {verb} VM {vm} "
                    f"(now {_human_power(before.power_state)})",
                    request=request,
                    data=data,
                    dry_run=True,
                )
        log.info("vSphere: sent %s (task %s)", request, task_id)
        try:
            with self._errors(action, vm):
                elapsed = self._wait_for_task(task_id, request)
                after = self._invoke(lambda s: self._vm_by_moid(s, before.moid))
        except VSphereError as err:
            if err.reason != "unreachable":
                raise
            # The task was sent: a blind retry could run the action twice. Say so, and tell
            # the caller's retry policy this is not a fault to retry.
            raise VSphereError(
                err.reason,
                f"{err.message}, after sending {request} (vSphere task {task_id}): "
                "it may have run; check the VM before retrying",
                transient=False,
            ) from err
        data.update(task=task_id, power_state=after.power_state, seconds=round(elapsed, 3))
        done = {"reset": "Reset", "power_on": "Powered on", "power_off": "Powered off"}[action]
        return ActionOutcome(
            summary=f"{done} VM {vm} (now {_human_power(after.power_state)})",
            request=request,
            data=data,
        )

    def _wait_for_task(self, task_id: str, request: str) -> float:
        """Poll the task until it ends; its error fault is raised as is (mapped by the caller).

        Polls at 20 ms, doubling up to 1 s: vcsim and quick vCenter tasks finish in a few ms,
        a slow reset is not hammered.
        """
        started = time.monotonic()
        deadline = started + self.task_timeout
        delay = 0.02
        while True:
            info = self._invoke(lambda s: _Task(task_id, s.si._stub).info)
            if info.state == vim.TaskInfo.State.success:
                return time.monotonic() - started
            if info.state == vim.TaskInfo.State.error:
                if isinstance(info.error, BaseException):
                    raise info.error
                raise VSphereError("error", f"{request} failed (vSphere task {task_id})")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise VSphereError(
                    "timeout",
                    f"{request} did not finish within {self.task_timeout:g} s "
                    f"(vSphere task {task_id} is still {info.state}); "
                    "check it in vCenter before retrying",
                    transient=False,  # the task runs on: a retry would queue a second one
                )
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, 1.0)
