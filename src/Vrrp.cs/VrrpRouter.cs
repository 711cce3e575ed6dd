using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Lb.Vrrp;

/// <summary>
/// Runs one VRRP instance with a real clock. Numbered steps:
/// <code>
///  1. StartAsync: validate options, find the primary address, remove a stale VIP of ours (left by SIGKILL),
///     open the raw sockets, run every tracked check once, post Startup.
///  2. Receive loop: IP packet → ReceiveValidator → AdvertReceived, or a counted drop.
///  3. Tracking loops: scripts, track_self, link states → Tracking → PriorityChanged / FaultChanged.
///  4. Main loop: one inbox; waits for a message or the state's next deadline, calls StateMachine.Step, then
///     carries out the actions in order (send advert, add/remove VIPs, gratuitous ARP, log the transition).
///  5. StopAsync: Shutdown (a master sends priority 0 and keeps the VIPs until its successor speaks), then close.
/// </code>
/// </summary>
public sealed class VrrpRouter : IAsyncDisposable
{
    readonly VrrpOptions options;
    readonly ILogger logger;
    readonly TimeProvider time;
    readonly long startTimestamp;
    readonly Channel<object> inbox = Channel.CreateUnbounded<object>(new UnboundedChannelOptions { SingleReader = true });
    readonly VipActions vips;
    readonly CancellationTokenSource stopping = new();
    readonly TaskCompletionSource stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    StateMachine? machine;
    VrrpState? state;
    TrackingState tracking = TrackingState.Create([], []);
    IVrrpTransport? transport;
    GratuitousArp? garp;
    ExpectedInstance? expected;
    Task loops = Task.CompletedTask;
    int role = (int)VrrpRole.Initialize;
    int priority;
    bool shutdownRequested;

    sealed record CheckResult(int Index, bool Ok);
    sealed record LinkState(string Name, bool Up);

    public VrrpRouter(VrrpOptions options, ILogger? logger = null, TimeProvider? time = null)
    {
        this.options = options;
        this.logger = logger ?? NullLogger.Instance;
        this.time = time ?? TimeProvider.System;
        startTimestamp = this.time.GetTimestamp();
        vips = new VipActions(options.Interface, options.VirtualIps);
        priority = options.Priority;
    }

    public VrrpRole Role => (VrrpRole)Volatile.Read(ref role);
    /// <summary>Effective priority: configured ± tracking weights.</summary>
    public byte Priority => (byte)Volatile.Read(ref priority);
    public DropCounters Drops { get; } = new();
    public IPAddress? LocalAddress => transport?.LocalAddress;
    /// <summary>Raised on the router's loop after every transition: (from, to, reason).</summary>
    public event Action<VrrpRole, VrrpRole, string>? RoleChanged;

    TimeSpan Now => time.GetElapsedTime(startTimestamp);

    /// <summary>
    /// Step 1. Rejects (ArgumentException) invalid options, listing every error; throws SocketException if the
    /// interface, its IPv4 address or CAP_NET_RAW is missing.
    /// </summary>
    public async Task StartAsync(CancellationToken ct)
    {
        var errors = options.Validate();
        if (errors.Count > 0) throw new ArgumentException("invalid [vrrp] options: " + string.Join("; ", errors));
        var local = options.SourceAddress
            ?? RawVrrpSocket.PrimaryAddress(options.Interface, options.VirtualIps.Select(v => v.Address))
            ?? throw new SocketException((int)SocketError.AddressNotAvailable);
        await RemoveStaleVips(ct);
        transport = RawVrrpSocket.Open(options.Interface, local);
        garp = GratuitousArp.Open(options.Interface);
        machine = new StateMachine(ElectionConfigFor(local));
        expected = ExpectedFor(local);
        tracking = await InitialTracking(ct);
        state = machine.Initial with { Priority = Tracking.EffectivePriority(options.Priority, tracking) };
        Volatile.Write(ref priority, state.Priority);
        if (Tracking.FaultReason(tracking) is { } fault) inbox.Writer.TryWrite(new VrrpEvent.FaultChanged(true, fault));
        inbox.Writer.TryWrite(new VrrpEvent.Startup());
        logger.LogInformation("VRRP vrid {Vrid} v{Version} starting on {Interface} from {Local}, priority {Priority}",
            options.VirtualRouterId, (int)options.Version, options.Interface, local, state.Priority);
        var token = stopping.Token;
        loops = Task.WhenAll(
            Task.Run(() => MainLoop(token), CancellationToken.None),
            Task.Run(() => ReceiveLoop(token), CancellationToken.None),
            Task.Run(() => TrackLoops(token), CancellationToken.None));
    }

    ElectionConfig ElectionConfigFor(IPAddress local) => new(
        options.Version, options.Priority, options.AdvertInterval, local, options.Preempt, options.PreemptDelay,
        options.GarpMasterDelay, options.GarpMasterRefresh);

    ExpectedInstance ExpectedFor(IPAddress local) => new(
        options.Version, options.VirtualRouterId, options.VirtualIps.Select(v => v.Address).ToArray(),
        options.Version == VrrpVersion.V2 ? (byte)options.IntervalUnits : (byte)0,
        options.AuthPassword is null ? AuthType.None : AuthType.SimpleText,
        options.AuthPassword is null ? new byte[VrrpPacket.V2AuthDataLength] : VrrpPacket.PasswordAuthData(options.AuthPassword),
        local);

    // keepalived leaves its VIPs configured when killed with SIGKILL; ours would be a duplicate address once a
    // peer has taken over, so a starting router removes them (it adds them back if it becomes master).
    async Task RemoveStaleVips(CancellationToken ct)
    {
        var present = await vips.FindPresentAsync(ct);
        if (present.Count == 0) return;
        logger.LogWarning("VRRP vrid {Vrid}: removing stale VIP(s) {Vips} left on {Interface} by a previous instance",
            options.VirtualRouterId, string.Join(", ", present), options.Interface);
        foreach (var e in await vips.RemoveAsync(ct)) logger.LogError("VRRP: {Error}", e);
    }

    /// <summary>Step 5. Sends priority 0 if master, waits (bounded) for the handover, releases the VIPs, closes.</summary>
    public async Task StopAsync(CancellationToken ct)
    {
        if (machine is null || state is null) return;
        inbox.Writer.TryWrite(new VrrpEvent.Shutdown());
        var bound = machine.MasterDownInterval(state) + TimeSpan.FromSeconds(2);
        await Task.WhenAny(stopped.Task, Task.Delay(bound, time, ct));
        await CloseAsync();
        if (!stopped.Task.IsCompleted)
        {
            logger.LogWarning("VRRP vrid {Vrid}: shutdown did not complete in {Bound}; removing VIPs", options.VirtualRouterId, bound);
            await vips.RemoveAsync(CancellationToken.None);
        }
    }

    async Task CloseAsync()
    {
        stopping.Cancel();
        try { await loops; } catch (OperationCanceledException) { }
        transport?.Dispose();
        garp?.Dispose();
    }

    public async ValueTask DisposeAsync()
    {
        if (!stopping.IsCancellationRequested) await CloseAsync();
        stopping.Dispose();
    }

    // Step 4.
    async Task MainLoop(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            var message = await NextMessage(ct);
            if (message is null) return;
            foreach (var ev in ToEvents(message)) await Apply(ev, ct);
        }
    }

    async Task<object?> NextMessage(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            if (inbox.Reader.TryRead(out var m)) return m;
            var wait = state!.NextDeadline is { } d ? d - Now : Timeout.InfiniteTimeSpan;
            if (wait != Timeout.InfiniteTimeSpan && wait <= TimeSpan.Zero) return new VrrpEvent.Tick();
            using var timer = wait == Timeout.InfiniteTimeSpan ? new CancellationTokenSource() : new CancellationTokenSource(wait, time);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, timer.Token);
            try { await inbox.Reader.WaitToReadAsync(linked.Token); }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested) { return new VrrpEvent.Tick(); }
            catch (OperationCanceledException) { return null; }
        }
        return null;
    }

    IEnumerable<VrrpEvent> ToEvents(object message) => message switch
    {
        VrrpEvent ev => [ev],
        CheckResult c => Track(Tracking.RecordCheck(tracking, c.Index, c.Ok)),
        LinkState l => Track(Tracking.RecordInterface(tracking, l.Name, l.Up)),
        _ => [],
    };

    IReadOnlyList<VrrpEvent> Track(TrackingState next)
    {
        var before = tracking;
        tracking = next;
        LogCheckChanges(before, next);
        var events = new List<VrrpEvent>();
        string? faultBefore = Tracking.FaultReason(before), faultNow = Tracking.FaultReason(next);
        if ((faultBefore is null) != (faultNow is null))
            events.Add(new VrrpEvent.FaultChanged(faultNow is not null, faultNow ?? "tracked items recovered"));
        byte p = Tracking.EffectivePriority(options.Priority, next);
        if (p != Tracking.EffectivePriority(options.Priority, before))
            events.Add(new VrrpEvent.PriorityChanged(p, "tracking"));
        return events;
    }

    void LogCheckChanges(TrackingState before, TrackingState next)
    {
        for (int i = 0; i < next.Checks.Length; i++)
            if (before.Checks[i].Health.Up != next.Checks[i].Health.Up)
                logger.LogInformation("VRRP vrid {Vrid}: check {Check} is {State}; priority {Priority}", options.VirtualRouterId,
                    next.Checks[i].Name, next.Checks[i].Health.Up ? "up" : "down", Tracking.EffectivePriority(options.Priority, next));
        foreach (var (name, up) in next.Interfaces)
            if (before.Interfaces[name] != up)
                logger.LogInformation("VRRP vrid {Vrid}: tracked interface {Interface} is {State}", options.VirtualRouterId, name, up ? "up" : "down");
    }

    async Task Apply(VrrpEvent ev, CancellationToken ct)
    {
        if (ev is VrrpEvent.Shutdown) shutdownRequested = true;
        var result = machine!.Step(state!, ev, Now);
        state = result.State;
        Volatile.Write(ref priority, state.Priority);
        foreach (var action in result.Actions) await Perform(action, ct);
        if (shutdownRequested && state.Role == VrrpRole.Initialize) stopped.TrySetResult();
    }

    async Task Perform(VrrpAction action, CancellationToken ct)
    {
        try
        {
            switch (action)
            {
                case VrrpAction.SendAdvert s: await SendAdvert(s.Priority, ct); break;
                case VrrpAction.AddVips: await ChangeVips(vips.AddAsync, "added", ct); break;
                case VrrpAction.RemoveVips: await ChangeVips(vips.RemoveAsync, "removed", ct); break;
                case VrrpAction.SendGarp: SendGarp(); break;
                case VrrpAction.Transition t: OnTransition(t); break;
            }
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // One failed action (a missing `ip`, a send error) must not stop the router: log it and go on.
            logger.LogError(e, "VRRP vrid {Vrid}: {Action} failed", options.VirtualRouterId, action);
        }
    }

    async Task SendAdvert(byte advertPriority, CancellationToken ct)
    {
        var addresses = options.VirtualIps.Select(v => v.Address).ToArray();
        var packet = options.Version == VrrpVersion.V2
            ? VrrpPacket.V2(options.VirtualRouterId, advertPriority, (byte)options.IntervalUnits, addresses,
                expected!.Auth, expected.AuthData)
            : VrrpPacket.V3(options.VirtualRouterId, advertPriority, options.IntervalUnits, addresses);
        IReadOnlyList<IPAddress> destinations = options.UnicastPeers.Count > 0 ? options.UnicastPeers : [RawVrrpSocket.MulticastGroup];
        foreach (var dst in destinations)
            await transport!.SendAsync(VrrpCodec.Encode(packet, transport.LocalAddress, dst), dst, ct);
    }

    async Task ChangeVips(Func<CancellationToken, Task<IReadOnlyList<string>>> change, string verb, CancellationToken ct)
    {
        var errors = await change(ct);
        foreach (var e in errors) logger.LogError("VRRP vrid {Vrid}: {Error}", options.VirtualRouterId, e);
        if (errors.Count == 0)
            logger.LogInformation("VRRP vrid {Vrid}: {Verb} VIP(s) {Vips} on {Interface}", options.VirtualRouterId, verb,
                string.Join(", ", options.VirtualIps), options.Interface);
    }

    void SendGarp()
    {
        int failures = garp!.Send(options.VirtualIps.Select(v => v.Address), options.GarpMasterRepeat);
        if (failures > 0) logger.LogWarning("VRRP vrid {Vrid}: {Failures} gratuitous ARP(s) failed", options.VirtualRouterId, failures);
    }

    void OnTransition(VrrpAction.Transition t)
    {
        Volatile.Write(ref role, (int)t.To);
        logger.LogInformation("VRRP vrid {Vrid}: {From} -> {To} ({Reason}), priority {Priority}",
            options.VirtualRouterId, t.From, t.To, t.Reason, state!.Priority);
        RoleChanged?.Invoke(t.From, t.To, t.Reason);
    }

    // Step 2.
    async Task ReceiveLoop(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            IpPacket? packet;
            try { packet = await transport!.ReceiveAsync(ct); }
            catch (OperationCanceledException) { return; }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                if (ct.IsCancellationRequested) return;
                logger.LogWarning("VRRP vrid {Vrid}: receive failed: {Error}", options.VirtualRouterId, e.Message);
                await Task.Delay(TimeSpan.FromMilliseconds(100), time, ct).ContinueWith(_ => { }, TaskScheduler.Default);
                continue;
            }
            Receive(packet);
        }
    }

    void Receive(IpPacket? packet)
    {
        var (advert, reason) = ReceivePath.Accept(packet, expected!, Drops);
        if (advert is not null)
        {
            inbox.Writer.TryWrite(advert);
            return;
        }
        // The first drop of each reason is worth a warning (often a misconfigured peer); the rest are counted.
        if (packet is { } p && Drops[reason] == 1 && reason is not (DropReason.OwnPacket or DropReason.UnknownVrid))
            logger.LogWarning("VRRP vrid {Vrid}: dropped a packet from {Source}: {Reason}", options.VirtualRouterId, p.Info.Source, reason);
    }

    // Step 3.
    IEnumerable<(string Name, int Weight, int Rise, int Fall)> CheckSpecs() =>
        options.TrackScripts.Select(s => (s.Command, s.Weight, s.Rise, s.Fall))
            .Concat(options.TrackSelf is { } t ? [("track_self", t.Weight, t.Rise, t.Fall)] : []);

    async Task<TrackingState> InitialTracking(CancellationToken ct)
    {
        var checks = CheckSpecs().Select(c => new TrackedCheck(c.Name, c.Weight, RiseFall.Create(c.Rise, c.Fall))).ToList();
        var s = TrackingState.Create(checks, options.TrackInterfaces);
        for (int i = 0; i < checks.Count; i++) s = Tracking.RecordCheck(s, i, await RunCheck(i, ct));
        foreach (var name in options.TrackInterfaces) s = Tracking.RecordInterface(s, name, LinkUp(name));
        return s;
    }

    async Task<bool> RunCheck(int index, CancellationToken ct)
    {
        if (index < options.TrackScripts.Count) return await RunScript(options.TrackScripts[index], ct);
        try { return await options.TrackSelf!.Check(ct); }
        catch (Exception e) when (e is not OperationCanceledException) { return false; }
    }

    static async Task<bool> RunScript(TrackScript s, CancellationToken ct)
    {
        try { return (await Command.RunAsync("/bin/sh", ["-c", s.Command], s.Interval, ct)).Ok; }
        catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception) { return false; }
    }

    Task TrackLoops(CancellationToken ct)
    {
        var intervals = options.TrackScripts.Select(s => s.Interval)
            .Concat(options.TrackSelf is { } t ? [t.Every] : []).ToArray();
        var tasks = intervals.Select((every, i) => Periodic(every, async () =>
            inbox.Writer.TryWrite(new CheckResult(i, await RunCheck(i, ct))), ct)).ToList();
        if (options.TrackInterfaces.Count > 0) tasks.Add(WatchLinks(ct));
        return Task.WhenAll(tasks);
    }

    async Task Periodic(TimeSpan every, Func<Task> work, CancellationToken ct)
    {
        using var timer = new PeriodicTimer(every, time);
        try
        {
            while (await timer.WaitForNextTickAsync(ct)) await work();
        }
        catch (OperationCanceledException) { }
    }

    // Link state from sysfs every 100 ms: cheap, and well inside one advert interval.
    Task WatchLinks(CancellationToken ct)
    {
        var last = options.TrackInterfaces.ToDictionary(n => n, n => tracking.Interfaces[n]);
        return Periodic(TimeSpan.FromMilliseconds(100), () =>
        {
            foreach (var name in options.TrackInterfaces)
            {
                bool up = LinkUp(name);
                if (up == last[name]) continue;
                last[name] = up;
                inbox.Writer.TryWrite(new LinkState(name, up));
            }
            return Task.CompletedTask;
        }, ct);
    }

    /// <summary>operstate "up" (or "unknown", which virtual devices without carrier reporting show) counts as up.</summary>
    public static bool LinkUp(string interfaceName)
    {
        try
        {
            var s = File.ReadAllText($"/sys/class/net/{interfaceName}/operstate").Trim();
            return s is "up" or "unknown";
        }
        catch (IOException) { return false; }
        catch (UnauthorizedAccessException) { return false; }
    }
}
