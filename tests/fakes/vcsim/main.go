// Command vcsim serves govmomi's vCenter simulator on a loopback address for InfraAI's tests.
//
// Debian's golang-github-vmware-govmomi-dev ships the simulator package but no vcsim command,
// so this is the smallest main that builds offline against it (GOPATH mode, no module proxy).
// It adds what the tests need and govmomi 0.24's simulator lacks:
//
//   - RebootGuest (not implemented by the 0.24 simulator): refused with InvalidPowerState when
//     the VM is not powered on and ToolsUnavailable when VMware Tools are not running, as
//     vCenter does; on success it posts a VmGuestRebootEvent so a test can see it happened.
//   - -tools: VMs whose VMware Tools run while they are powered on (the simulator's own VMs
//     always report guestToolsNotRunning). Their tools status follows power operations.
//   - -stuck: VMs whose power tasks never finish, to test task timeouts.
//   - -username/-password: the only credentials accepted (without them any non-empty pair is).
//
// It prints one line, the SDK URL, once it is serving, and runs until it gets SIGINT/SIGTERM
// or, with -exit-on-eof, its standard input closes (a test runner that dies leaves nothing
// behind). Built in GOPATH mode: no go.mod here, on purpose.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"log"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// guestVM wraps the simulator's VirtualMachine (the pattern of govmomi's example_extend_test.go)
// to add guest-tools behaviour and stuck tasks. It embeds the struct by value, not by pointer as
// that example does: 0.24's PropertyCollector digs the mo type out of the first field and panics
// on a pointer ("does not have an embedded mo type").
type guestVM struct {
	simulator.VirtualMachine

	tools bool // VMware Tools installed: running whenever the VM is powered on
	stuck bool // power tasks stay "running" forever
	ip    string
}

// syncTools makes the guest properties match the power state, as a real guest's tools do.
func (vm *guestVM) syncTools() {
	running := vm.tools && vm.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOn
	status := types.VirtualMachineToolsRunningStatusGuestToolsNotRunning
	toolsStatus := types.VirtualMachineToolsStatusToolsNotInstalled
	ip, hostname := "", ""
	if vm.tools {
		toolsStatus = types.VirtualMachineToolsStatusToolsNotRunning
	}
	if running {
		status = types.VirtualMachineToolsRunningStatusGuestToolsRunning
		toolsStatus = types.VirtualMachineToolsStatusToolsOk
		ip, hostname = vm.ip, strings.ToLower(vm.Name)
	}
	simulator.Map.Update(&vm.VirtualMachine, []types.PropertyChange{
		{Name: "guest.toolsRunningStatus", Val: string(status)},
		{Name: "guest.toolsStatus", Val: toolsStatus},
		{Name: "guest.ipAddress", Val: ip},
		{Name: "guest.hostName", Val: hostname},
		{Name: "summary.guest.toolsRunningStatus", Val: string(status)},
		{Name: "summary.guest.toolsStatus", Val: toolsStatus},
		{Name: "summary.guest.ipAddress", Val: ip},
		{Name: "summary.guest.hostName", Val: hostname},
	})
}

// stuckTask returns a task that stays in the running state.
func (vm *guestVM) stuckTask(name string) types.ManagedObjectReference {
	task := simulator.CreateTask(&vm.VirtualMachine, name, nil)
	simulator.Map.Update(task, []types.PropertyChange{
		{Name: "info.startTime", Val: time.Now()},
		{Name: "info.state", Val: types.TaskInfoStateRunning},
	})
	return task.Self
}

func (vm *guestVM) PowerOnVMTask(ctx *simulator.Context, req *types.PowerOnVM_Task) soap.HasFault {
	if vm.stuck {
		return &methods.PowerOnVM_TaskBody{
			Res: &types.PowerOnVM_TaskResponse{Returnval: vm.stuckTask("powerOn")},
		}
	}
	res := vm.VirtualMachine.PowerOnVMTask(ctx, req)
	vm.syncTools()
	return res
}

func (vm *guestVM) PowerOffVMTask(ctx *simulator.Context, req *types.PowerOffVM_Task) soap.HasFault {
	if vm.stuck {
		return &methods.PowerOffVM_TaskBody{
			Res: &types.PowerOffVM_TaskResponse{Returnval: vm.stuckTask("powerOff")},
		}
	}
	res := vm.VirtualMachine.PowerOffVMTask(ctx, req)
	vm.syncTools()
	return res
}

func (vm *guestVM) ResetVMTask(ctx *simulator.Context, req *types.ResetVM_Task) soap.HasFault {
	if vm.stuck {
		return &methods.ResetVM_TaskBody{
			Res: &types.ResetVM_TaskResponse{Returnval: vm.stuckTask("reset")},
		}
	}
	res := vm.VirtualMachine.ResetVMTask(ctx, req)
	vm.syncTools()
	return res
}

// RebootGuest is a plain method in the vSphere API (not a task): vCenter asks the tools to reboot
// the guest OS and returns at once.
func (vm *guestVM) RebootGuest(ctx *simulator.Context, req *types.RebootGuest) soap.HasFault {
	body := &methods.RebootGuestBody{}
	if vm.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOn {
		body.Fault_ = simulator.Fault("", &types.InvalidPowerState{
			RequestedState: types.VirtualMachinePowerStatePoweredOn,
			ExistingState:  vm.Runtime.PowerState,
		})
		return body
	}
	if vm.Guest.ToolsRunningStatus != string(types.VirtualMachineToolsRunningStatusGuestToolsRunning) {
		body.Fault_ = simulator.Fault("", &types.ToolsUnavailable{})
		return body
	}
	em := simulator.Map.EventManager()
	event := &types.VmGuestRebootEvent{VmEvent: types.VmEvent{Event: vm.eventArguments()}}
	simulator.Map.WithLock(em, func() {
		em.PostEvent(ctx, &types.PostEvent{EventToPost: event})
	})
	body.Res = &types.RebootGuestResponse{}
	return body
}

// eventArguments fills what the event message templates use ("... on {{.Host.Name}} in
// {{.Datacenter.Name}}"); the simulator's own helper for it is unexported.
func (vm *guestVM) eventArguments() types.Event {
	event := types.Event{Vm: &types.VmEventArgument{
		EntityEventArgument: types.EntityEventArgument{Name: vm.Name},
		Vm:                  vm.Self,
	}}
	if vm.Runtime.Host != nil {
		if host, ok := simulator.Map.Get(*vm.Runtime.Host).(*simulator.HostSystem); ok {
			event.Host = &types.HostEventArgument{
				EntityEventArgument: types.EntityEventArgument{Name: host.Name},
				Host:                host.Self,
			}
		}
	}
	for parent := vm.Parent; parent != nil; {
		obj := simulator.Map.Get(*parent)
		if dc, ok := obj.(*simulator.Datacenter); ok {
			event.Datacenter = &types.DatacenterEventArgument{
				EntityEventArgument: types.EntityEventArgument{Name: dc.Name},
				Datacenter:          dc.Self,
			}
			break
		}
		entity, ok := obj.(mo.Entity)
		if !ok {
			break
		}
		parent = entity.Entity().Parent
	}
	return event
}

func splitNames(s string) map[string]bool {
	names := map[string]bool{}
	for _, name := range strings.Split(s, ",") {
		if name = strings.TrimSpace(name); name != "" {
			names[name] = true
		}
	}
	return names
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to serve on (port 0: any free port)")
	username := flag.String("username", "", "the only user name accepted (empty: any)")
	password := flag.String("password", "", "the only password accepted (with -username)")
	machines := flag.Int("vm", 2, "VMs per host and per cluster resource pool")
	tools := flag.String("tools", "", "comma-separated VM names whose VMware Tools run when powered on")
	stuck := flag.String("stuck", "", "comma-separated VM names whose power tasks never finish")
	plain := flag.Bool("http", false, "serve plain HTTP instead of HTTPS")
	watchStdin := flag.Bool("exit-on-eof", false, "exit when standard input closes (the parent died)")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("vcsim: ")

	model := simulator.VPX()
	model.Machine = *machines
	if err := model.Create(); err != nil {
		log.Fatal(err)
	}
	defer model.Remove()

	toolsVMs, stuckVMs := splitNames(*tools), splitNames(*stuck)
	for i, entity := range simulator.Map.All("VirtualMachine") {
		base := entity.(*simulator.VirtualMachine)
		vm := &guestVM{
			VirtualMachine: *base,
			tools:          toolsVMs[base.Name],
			stuck:          stuckVMs[base.Name],
			ip:             fmt.Sprintf("192.0.2.%d", 10+i), // TEST-NET-1: documentation only
		}
		delete(toolsVMs, base.Name)
		delete(stuckVMs, base.Name)
		simulator.Map.Put(vm) // same reference: replaces the VM in the inventory
		vm.syncTools()
	}
	for name := range toolsVMs {
		log.Fatalf("-tools: no VM named %q", name)
	}
	for name := range stuckVMs {
		log.Fatalf("-stuck: no VM named %q", name)
	}

	u := &url.URL{Host: *listen}
	if *username != "" {
		u.User = url.UserPassword(*username, *password)
	}
	model.Service.Listen = u
	if !*plain {
		model.Service.TLS = new(tls.Config) // httptest's built-in self-signed localhost cert
	}
	server := model.Service.NewServer()
	defer server.Close()

	ready := *server.URL
	ready.User = nil
	fmt.Println(ready.String())

	done := make(chan os.Signal, 1)
	signal.Notify(done, syscall.SIGINT, syscall.SIGTERM)
	if *watchStdin {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			done <- syscall.SIGHUP
		}()
	}
	<-done
}
