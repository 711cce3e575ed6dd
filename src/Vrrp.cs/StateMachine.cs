using System.Net;

namespace Lb.Vrrp;

/// <summary>
/// Role of a virtual router (RFC 5798 §6.4). <see cref="Fault"/> is keepalived's: a tracked interface or
/// a weight-0 check failed, so the router neither advertises nor holds the VIPs. <see cref="Releasing"/> is a
/// master that has sent priority 0 on shutdown and keeps the VIPs until it hears its successor, so no client
/// request is lost during the handover.
/// </summary>
public enum VrrpRole { Initialize, Backup, Master, Fault, Releasing }

/// <summary>
/// The election's settings, fixed for a router's life. <see cref="Priority"/> is the configured (base) priority:
/// 255 = address owner, 1..254 otherwise (RFC 5798 §5.2.4). <see cref="GarpMasterDelay"/>: second gratuitous
/// ARP burst after becoming master (keepalived garp_master_delay, zero = none); <see cref="GarpRefresh"/>:
/// repeat while master (keepalived garp_master_refresh, zero = off); <see cref="ReleaseLinger"/>: how long a
/// releasing master keeps the VIPs after hearing its successor (time for the successor's gratuitous ARP).
/// </summary>
public sealed record ElectionConfig(
    VrrpVersion Version,
    byte Priority,
    TimeSpan AdvertInterval,
    IPAddress LocalAddress,
    bool Preempt = true,
    TimeSpan PreemptDelay = default,
    TimeSpan GarpMasterDelay = default,
    TimeSpan GarpRefresh = default,
    TimeSpan? ReleaseLinger = null)
{
    /// <summary>RFC 5798 §5.2.4: the owner of the virtual addresses.</summary>
    public const byte OwnerPriority = 255;
    /// <summary>RFC 5798 §5.2.4: "the current Master has stopped participating in VRRP".</summary>
    public const byte StopPriority = 0;
    public TimeSpan Linger => ReleaseLinger ?? TimeSpan.FromMilliseconds(500);
}

/// <summary>
/// The whole runtime state of one virtual router: role, effective priority (base ± tracking), the master's
/// advertisement interval as learned (RFC 5798 §6.1 Master_Adver_Interval), and the timers as absolute deadlines
/// (null = not running). <see cref="Faulted"/> remembers a fault reported before startup; <see cref="MasterStopped"/>
/// that the Master_Down_Timer runs for Skew_Time only, because the master sent priority 0.
/// </summary>
public sealed record VrrpState(
    VrrpRole Role,
    byte Priority,
    TimeSpan MasterAdverInterval,
    TimeSpan? MasterDownAt = null,
    TimeSpan? AdverAt = null,
    TimeSpan? GarpAt = null,
    TimeSpan? PreemptAt = null,
    TimeSpan? ReleaseAt = null,
    bool Faulted = false,
    bool MasterStopped = false)
{
    /// <summary>The earliest running timer: when the shell must deliver <see cref="VrrpEvent.Tick"/> next.</summary>
    public TimeSpan? NextDeadline =>
        new[] { MasterDownAt, AdverAt, GarpAt, ReleaseAt }.Where(t => t.HasValue).Min();
}

/// <summary>Inputs of the state machine.</summary>
public abstract record VrrpEvent
{
    public sealed record Startup : VrrpEvent;
    public sealed record Shutdown : VrrpEvent;
    /// <summary>A validated advertisement from another router for our VRID.</summary>
    public sealed record AdvertReceived(byte Priority, TimeSpan Interval, IPAddress Source) : VrrpEvent;
    /// <summary>The clock reached <see cref="VrrpState.NextDeadline"/> (early ticks are harmless).</summary>
    public sealed record Tick : VrrpEvent;
    /// <summary>Tracking moved the effective priority (see <see cref="Tracking"/>).</summary>
    public sealed record PriorityChanged(byte Priority, string Reason) : VrrpEvent;
    /// <summary>A tracked interface or weight-0 check failed (true) or all recovered (false).</summary>
    public sealed record FaultChanged(bool Faulted, string Reason) : VrrpEvent;
}

/// <summary>Outputs of the state machine: values the shell carries out, in order.</summary>
public abstract record VrrpAction
{
    public sealed record SendAdvert(byte Priority) : VrrpAction;
    public sealed record AddVips : VrrpAction;
    public sealed record RemoveVips : VrrpAction;
    public sealed record SendGarp : VrrpAction;
    public sealed record Transition(VrrpRole From, VrrpRole To, string Reason) : VrrpAction;
}

public readonly record struct StepResult(VrrpState State, IReadOnlyList<VrrpAction> Actions);

/// <summary>
/// The VRRP state machine of RFC 5798 §6.4 (and RFC 3768 §6.4 for v2) as a pure function
/// <c>Step(state, event, now) → (state, actions)</c>. <c>now</c> is any monotonic clock.
/// </summary>
public sealed class StateMachine(ElectionConfig config)
{
    public ElectionConfig Config { get; } = config;

    static readonly VrrpAction[] None = [];

    public VrrpState Initial => new(VrrpRole.Initialize, Config.Priority, Config.AdvertInterval);

    /// <summary>
    /// RFC 5798 §6.1 Skew_Time = ((256 − Priority) × Master_Adver_Interval) / 256;
    /// RFC 3768 §6.1 (v2) Skew_Time = (256 − Priority) / 256 seconds.
    /// </summary>
    public static TimeSpan SkewTime(VrrpVersion version, byte priority, TimeSpan masterAdverInterval) =>
        version == VrrpVersion.V2
            ? TimeSpan.FromSeconds((256 - priority) / 256.0)
            : masterAdverInterval * (256 - priority) / 256;

    /// <summary>RFC 5798 §6.1 / RFC 3768 §6.1: Master_Down_Interval = 3 × (Master_)Adver_Interval + Skew_Time.</summary>
    public static TimeSpan MasterDownInterval(VrrpVersion version, byte priority, TimeSpan masterAdverInterval) =>
        3 * masterAdverInterval + SkewTime(version, priority, masterAdverInterval);

    public TimeSpan MasterDownInterval(VrrpState s) => MasterDownInterval(Config.Version, s.Priority, s.MasterAdverInterval);

    /// <summary>Rejects nothing: an event that means nothing in the current role leaves the state as it is.</summary>
    public StepResult Step(VrrpState state, VrrpEvent ev, TimeSpan now) => (state.Role, ev) switch
    {
        (_, VrrpEvent.PriorityChanged p) => ChangePriority(state, p, now),
        (VrrpRole.Initialize, VrrpEvent.Startup) => Start(state, now),
        (VrrpRole.Initialize, VrrpEvent.FaultChanged f) => Same(state with { Faulted = f.Faulted }),
        (VrrpRole.Backup, _) => Backup(state, ev, now),
        (VrrpRole.Master, _) => Master(state, ev, now),
        (VrrpRole.Fault, _) => Fault(state, ev, now),
        (VrrpRole.Releasing, _) => Releasing(state, ev, now),
        _ => Same(state),
    };

    static StepResult Same(VrrpState s) => new(s, None);

    // RFC 5798 §6.4.1: the owner becomes master at once, everyone else waits Master_Down_Interval as backup.
    StepResult Start(VrrpState s, TimeSpan now)
    {
        if (s.Faulted) return Go(s with { Role = VrrpRole.Fault }, VrrpRole.Initialize, "startup while a tracked item is down");
        if (Config.Priority == ElectionConfig.OwnerPriority) return BecomeMaster(s, now, "startup as address owner (priority 255)");
        return ToBackup(s, now, Config.AdvertInterval, "startup");
    }

    StepResult Backup(VrrpState s, VrrpEvent ev, TimeSpan now) => ev switch
    {
        VrrpEvent.Shutdown => Go(Stopped(s), s.Role, "shutdown"),
        VrrpEvent.FaultChanged { Faulted: true } f => Go(Stopped(s) with { Role = VrrpRole.Fault, Faulted = true }, s.Role, f.Reason),
        VrrpEvent.Tick when s.MasterDownAt <= now => BecomeMaster(s, now, s.MasterStopped
            ? "master sent priority 0, Skew_Time elapsed" : "no advertisement for Master_Down_Interval"),
        VrrpEvent.AdvertReceived a => BackupReceive(s, a, now),
        _ => Same(s),
    };

    // RFC 5798 §6.4.2 "If an ADVERTISEMENT is received".
    StepResult BackupReceive(VrrpState s, VrrpEvent.AdvertReceived a, TimeSpan now)
    {
        if (a.Priority == ElectionConfig.StopPriority)
            return Same(s with { MasterDownAt = now + SkewTime(Config.Version, s.Priority, s.MasterAdverInterval), MasterStopped = true });
        if (!Config.Preempt || a.Priority >= s.Priority)
            return Same(Accept(s, a, now) with { PreemptAt = null });
        // Preempt and a lower-priority master. The RFC discards the advert and lets Master_Down_Timer fire;
        // we take over now (the same outcome, Master_Down_Interval sooner), after preempt_delay if one is set.
        var preemptAt = s.PreemptAt ?? now + Config.PreemptDelay;
        if (now < preemptAt) return Same(Accept(s, a, now) with { PreemptAt = preemptAt });
        return BecomeMaster(s, now, $"preempting lower-priority master {a.Source} ({a.Priority} < {s.Priority})");
    }

    // RFC 5798 §6.4.2: v3 learns Master_Adver_Interval from the advert; v2 requires it equal to ours (§7.1 of 3768).
    VrrpState Accept(VrrpState s, VrrpEvent.AdvertReceived a, TimeSpan now)
    {
        var interval = Config.Version == VrrpVersion.V3 ? a.Interval : Config.AdvertInterval;
        var learned = s with { MasterAdverInterval = interval };
        return learned with { MasterDownAt = now + MasterDownInterval(learned), MasterStopped = false };
    }

    StepResult Master(VrrpState s, VrrpEvent ev, TimeSpan now) => ev switch
    {
        // RFC 5798 §6.4.3 Shutdown: send priority 0. We keep the VIPs until the successor is heard (Releasing).
        VrrpEvent.Shutdown => Go(
            Stopped(s) with { Role = VrrpRole.Releasing, ReleaseAt = now + MasterDownInterval(s) },
            s.Role, "shutdown: sent priority 0", new VrrpAction.SendAdvert(ElectionConfig.StopPriority)),
        VrrpEvent.FaultChanged { Faulted: true } f => Go(
            Stopped(s) with { Role = VrrpRole.Fault, Faulted = true }, s.Role, f.Reason,
            new VrrpAction.SendAdvert(ElectionConfig.StopPriority), new VrrpAction.RemoveVips()),
        VrrpEvent.Tick => MasterTimers(s, now),
        VrrpEvent.AdvertReceived a => MasterReceive(s, a, now),
        _ => Same(s),
    };

    StepResult MasterTimers(VrrpState s, TimeSpan now)
    {
        var actions = new List<VrrpAction>();
        if (s.AdverAt <= now)
        {
            actions.Add(new VrrpAction.SendAdvert(s.Priority));
            s = s with { AdverAt = now + Config.AdvertInterval };
        }
        if (s.GarpAt <= now)
        {
            actions.Add(new VrrpAction.SendGarp());
            s = s with { GarpAt = Config.GarpRefresh > TimeSpan.Zero ? now + Config.GarpRefresh : null };
        }
        return new(s, actions);
    }

    // RFC 5798 §6.4.3 "If an ADVERTISEMENT is received".
    StepResult MasterReceive(VrrpState s, VrrpEvent.AdvertReceived a, TimeSpan now)
    {
        if (a.Priority == ElectionConfig.StopPriority || !Wins(a, s))
        {
            // Priority 0: the RFC's "send an ADVERTISEMENT" at once. A lower-priority master (a healed split brain):
            // assert ourselves now instead of at the next interval, so the other one steps down sooner.
            return new(s with { AdverAt = now + Config.AdvertInterval }, [new VrrpAction.SendAdvert(s.Priority)]);
        }
        var reason = a.Priority > s.Priority
            ? $"higher-priority master {a.Source} ({a.Priority} > {s.Priority})"
            : $"master {a.Source} with equal priority {a.Priority} and a higher address";
        var backup = ToBackup(s with { AdverAt = null, GarpAt = null }, now,
            Config.Version == VrrpVersion.V3 ? a.Interval : Config.AdvertInterval, reason);
        return backup with { Actions = [.. backup.Actions, new VrrpAction.RemoveVips()] };
    }

    // RFC 5798 §6.4.3: higher priority wins; on a tie the larger primary IP address wins.
    bool Wins(VrrpEvent.AdvertReceived a, VrrpState s) =>
        a.Priority > s.Priority || (a.Priority == s.Priority && CompareAddresses(a.Source, Config.LocalAddress) > 0);

    /// <summary>Unsigned byte-wise comparison of two addresses of one family, as RFC 5798 §6.4.3 orders them.</summary>
    public static int CompareAddresses(IPAddress a, IPAddress b) =>
        a.GetAddressBytes().AsSpan().SequenceCompareTo(b.GetAddressBytes());

    StepResult Fault(VrrpState s, VrrpEvent ev, TimeSpan now) => ev switch
    {
        VrrpEvent.Shutdown => Go(Stopped(s), s.Role, "shutdown"),
        VrrpEvent.FaultChanged { Faulted: false } f when Config.Priority == ElectionConfig.OwnerPriority =>
            BecomeMaster(s with { Faulted = false }, now, f.Reason),
        VrrpEvent.FaultChanged { Faulted: false } f => ToBackup(s with { Faulted = false }, now, Config.AdvertInterval, f.Reason),
        _ => Same(s),
    };

    StepResult Releasing(VrrpState s, VrrpEvent ev, TimeSpan now) => ev switch
    {
        VrrpEvent.AdvertReceived a when a.Priority != ElectionConfig.StopPriority =>
            Same(s with { ReleaseAt = Min(s.ReleaseAt, now + Config.Linger) }),
        VrrpEvent.Tick when s.ReleaseAt <= now =>
            Go(Stopped(s), s.Role, "VIPs released after handover", new VrrpAction.RemoveVips()),
        _ => Same(s),
    };

    static TimeSpan? Min(TimeSpan? a, TimeSpan b) => a is { } x && x < b ? x : b;

    StepResult ChangePriority(VrrpState s, VrrpEvent.PriorityChanged p, TimeSpan now)
    {
        if (Config.Priority == ElectionConfig.OwnerPriority || p.Priority == s.Priority) return Same(s);
        var changed = s with { Priority = p.Priority };
        // A master whose priority drops tells the backups now, so a preempting one can take over at once.
        if (s.Role == VrrpRole.Master && p.Priority < s.Priority)
            return new(changed with { AdverAt = now + Config.AdvertInterval }, [new VrrpAction.SendAdvert(p.Priority)]);
        return Same(changed);
    }

    // RFC 5798 §6.4.1/§6.4.2 "transition to the Master state": advertise, claim the VIPs, gratuitous ARP. We claim and
    // announce before advertising: a master we preempt drops the VIPs when it hears our advert, and by then the
    // clients' ARP caches already point here, so the handover loses no request.
    StepResult BecomeMaster(VrrpState s, TimeSpan now, string reason)
    {
        var garpAt = Config.GarpMasterDelay > TimeSpan.Zero ? now + Config.GarpMasterDelay
            : Config.GarpRefresh > TimeSpan.Zero ? now + Config.GarpRefresh : (TimeSpan?)null;
        var master = s with
        {
            Role = VrrpRole.Master, MasterDownAt = null, PreemptAt = null,
            AdverAt = now + Config.AdvertInterval, GarpAt = garpAt,
        };
        return Go(master, s.Role, reason,
            new VrrpAction.AddVips(), new VrrpAction.SendGarp(), new VrrpAction.SendAdvert(s.Priority));
    }

    StepResult ToBackup(VrrpState s, TimeSpan now, TimeSpan masterInterval, string reason)
    {
        var learned = s with { Role = VrrpRole.Backup, MasterAdverInterval = masterInterval, PreemptAt = null, MasterStopped = false };
        return Go(learned with { MasterDownAt = now + MasterDownInterval(learned) }, s.Role, reason);
    }

    static VrrpState Stopped(VrrpState s) => s with
    {
        Role = VrrpRole.Initialize, MasterDownAt = null, AdverAt = null, GarpAt = null, PreemptAt = null, ReleaseAt = null,
        MasterStopped = false,
    };

    static StepResult Go(VrrpState next, VrrpRole from, string reason, params VrrpAction[] actions) =>
        new(next, [new VrrpAction.Transition(from, next.Role, reason), .. actions]);
}
