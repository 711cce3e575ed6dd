using System.Net;
using System.Net.Sockets;

namespace Lb.Vrrp;

/// <summary>
/// A tracked script (keepalived vrrp_script): <see cref="Command"/> runs through /bin/sh every <see cref="Interval"/>,
/// exit status 0 = success, a run longer than the interval = failure. <see cref="Weight"/> &gt; 0 is added to the
/// priority while it succeeds, &lt; 0 is added while it fails, 0 puts the router in FAULT while it fails.
/// </summary>
public sealed record TrackScript(string Command, TimeSpan Interval, int Weight = 0, int Rise = 1, int Fall = 1);

/// <summary>
/// lb's own health (its listeners), the replacement for keepalived's `killall -0 apache2`: same weight rules. The
/// check is asynchronous: it runs every second on the thread pool that also serves requests, so it must not hold one
/// of its threads while it waits for a connection.
/// </summary>
public sealed record TrackSelf(Func<CancellationToken, Task<bool>> Check, int Weight = 2, TimeSpan? Interval = null, int Rise = 1, int Fall = 1)
{
    public TimeSpan Every => Interval ?? TimeSpan.FromSeconds(1);
}

/// <summary>
/// Configuration of one VRRP instance, the `[vrrp]` section of lb's config. Defaults follow keepalived where it
/// has one (priority 100, advert_int 1 s, preempt, garp_master_delay 5 s, garp_master_repeat 5). This library does
/// not read lb's config; Host.Tests' VrrpDefaultsTests keeps these equal to the config's (`Keywords.Vrrp`).
/// </summary>
public sealed record VrrpOptions
{
    /// <summary>`interface`: where adverts are sent and VIPs added.</summary>
    public required string Interface { get; init; }
    /// <summary>`virtual_router_id`: 1..255 (RFC 5798 §5.2.3).</summary>
    public required byte VirtualRouterId { get; init; }
    /// <summary>`priority`: 1..254, or 255 for the address owner (RFC 5798 §5.2.4).</summary>
    public byte Priority { get; init; } = 100;
    /// <summary>`advert_int`: v2 whole seconds 1..255 (RFC 3768 §5.3.7); v3 10 ms steps up to 40.95 s (RFC 5798 §5.2.7).</summary>
    public TimeSpan AdvertInterval { get; init; } = TimeSpan.FromSeconds(1);
    public VrrpVersion Version { get; init; } = VrrpVersion.V3;
    /// <summary>`virtual_ips`: IPv4 addresses with prefix.</summary>
    public required IReadOnlyList<VirtualIp> VirtualIps { get; init; }
    public bool Preempt { get; init; } = true;
    public TimeSpan PreemptDelay { get; init; }
    /// <summary>`garp_master_delay`: second gratuitous ARP burst after becoming master (zero: none).</summary>
    public TimeSpan GarpMasterDelay { get; init; } = TimeSpan.FromSeconds(5);
    /// <summary>`garp_master_repeat`: announcements per VIP in each burst.</summary>
    public int GarpMasterRepeat { get; init; } = 5;
    /// <summary>`garp_master_refresh`: repeat a burst this often while master (zero: off).</summary>
    public TimeSpan GarpMasterRefresh { get; init; }
    /// <summary>`unicast_peers`: send adverts to these instead of 224.0.0.18 (empty: multicast).</summary>
    public IReadOnlyList<IPAddress> UnicastPeers { get; init; } = [];
    /// <summary>`unicast_src_ip`: the primary address; default the interface's first IPv4 address that is not a VIP.</summary>
    public IPAddress? SourceAddress { get; init; }
    /// <summary>`track_interfaces`: link down on any of them = FAULT.</summary>
    public IReadOnlyList<string> TrackInterfaces { get; init; } = [];
    public IReadOnlyList<TrackScript> TrackScripts { get; init; } = [];
    public TrackSelf? TrackSelf { get; init; }
    /// <summary>`auth_pass`: VRRPv2 auth_type PASS as keepalived (RFC 2338 §5.3.6.1), at most 8 characters.</summary>
    public string? AuthPassword { get; init; }

    /// <summary>Every problem with these options (empty when valid), each naming its config keyword.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        void Check(bool ok, string message) { if (!ok) errors.Add(message); }
        Check(!string.IsNullOrWhiteSpace(Interface), "interface: required");
        Check(VirtualRouterId >= 1, "virtual_router_id: must be 1..255 (RFC 5798 §5.2.3)");
        Check(Priority >= 1, "priority: must be 1..255; 0 is reserved for a stopping master (RFC 5798 §5.2.4)");
        CheckInterval(Check);
        Check(VirtualIps.Count is > 0 and <= 255, "virtual_ips: between 1 and 255 addresses");
        Check(VirtualIps.All(v => v.Address.AddressFamily == AddressFamily.InterNetwork),
            "virtual_ips: only IPv4 virtual IPs are supported (the IPv6 transport is not implemented)");
        Check(UnicastPeers.All(p => p.AddressFamily == AddressFamily.InterNetwork), "unicast_peers: IPv4 addresses");
        Check(AuthPassword is null || (Version == VrrpVersion.V2 && AuthPassword.Length is > 0 and <= 8),
            "auth_pass: VRRPv2 only, 1..8 characters (RFC 5798 §9 removed authentication)");
        Check(GarpMasterRepeat is >= 1 and <= 100, "garp_master_repeat: 1..100");
        Check(PreemptDelay >= TimeSpan.Zero && GarpMasterDelay >= TimeSpan.Zero && GarpMasterRefresh >= TimeSpan.Zero,
            "preempt_delay, garp_master_delay, garp_master_refresh: not negative");
        foreach (var s in TrackScripts)
            Check(!string.IsNullOrWhiteSpace(s.Command) && s.Interval > TimeSpan.Zero && s.Rise >= 1 && s.Fall >= 1,
                $"track_script '{s.Command}': command, interval > 0, rise >= 1 and fall >= 1 required");
        Check(TrackSelf is null || (TrackSelf.Every > TimeSpan.Zero && TrackSelf.Rise >= 1 && TrackSelf.Fall >= 1),
            "track_self: interval > 0, rise >= 1 and fall >= 1");
        return errors;
    }

    void CheckInterval(Action<bool, string> check)
    {
        if (Version == VrrpVersion.V2)
            check(AdvertInterval.Ticks % TimeSpan.TicksPerSecond == 0 && AdvertInterval.TotalSeconds is >= 1 and <= 255,
                "advert_int: VRRPv2 takes whole seconds 1..255 (RFC 3768 §5.3.7)");
        else
            check(AdvertInterval.Ticks % (10 * TimeSpan.TicksPerMillisecond) == 0
                && AdvertInterval.TotalMilliseconds is >= 10 and <= VrrpCodec.MaxV3Interval * 10,
                "advert_int: VRRPv3 takes 10 ms steps from 10 ms to 40.95 s (RFC 5798 §5.2.7)");
    }

    /// <summary>The advertisement interval in wire units: seconds (v2) or centiseconds (v3).</summary>
    public ushort IntervalUnits => Version == VrrpVersion.V2
        ? (ushort)AdvertInterval.TotalSeconds
        : (ushort)(AdvertInterval.Ticks / (10 * TimeSpan.TicksPerMillisecond));
}
