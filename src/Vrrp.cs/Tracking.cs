using System.Collections.Immutable;

namespace Lb.Vrrp;

/// <summary>
/// HAProxy's rise/fall as one saturating counter: 0..Rise-1 is down, Rise..Rise+Fall-1 is up. From fully up,
/// <see cref="Fall"/> consecutive failures go down; from down, <see cref="Rise"/> consecutive successes go up.
/// </summary>
public readonly record struct RiseFall(int Health, int Rise, int Fall)
{
    /// <summary>Rejects (ArgumentOutOfRangeException) rise or fall below 1. Starts one success away from up,
    /// as keepalived's scripts do, unless <paramref name="up"/>.</summary>
    public static RiseFall Create(int rise, int fall, bool up = false)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(rise, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(fall, 1);
        return new(up ? rise + fall - 1 : rise - 1, rise, fall);
    }

    int Max => Rise + Fall - 1;
    public bool Up => Health >= Rise;

    public RiseFall Record(bool ok) => this with
    {
        Health = ok
            ? (Up || Health + 1 >= Rise ? Max : Health + 1)
            : (Up && Health - 1 >= Rise ? Health - 1 : 0),
    };
}

/// <summary>
/// One tracked check (a script, or lb's own listeners) with keepalived's weight semantics: weight &gt; 0 is added
/// while the check is up, weight &lt; 0 is added (subtracted) while it is down, weight 0 means down = FAULT.
/// </summary>
public sealed record TrackedCheck(string Name, int Weight, RiseFall Health);

/// <summary>Everything tracking knows: each check's counter and each tracked interface's link state.</summary>
public sealed record TrackingState(ImmutableArray<TrackedCheck> Checks, ImmutableDictionary<string, bool> Interfaces)
{
    public static TrackingState Create(IEnumerable<TrackedCheck> checks, IEnumerable<string> interfaces) =>
        new([.. checks], interfaces.ToImmutableDictionary(i => i, _ => true));
}

/// <summary>Pure tracking rules: how check results and link states become a priority and a fault.</summary>
public static class Tracking
{
    public static TrackingState RecordCheck(TrackingState s, int index, bool ok) =>
        s with { Checks = s.Checks.SetItem(index, s.Checks[index] with { Health = s.Checks[index].Health.Record(ok) }) };

    public static TrackingState RecordInterface(TrackingState s, string name, bool up) =>
        s.Interfaces.ContainsKey(name) ? s with { Interfaces = s.Interfaces.SetItem(name, up) } : s;

    /// <summary>Base priority plus weights, kept within 1..254 (keepalived); the owner's 255 never moves (RFC 5798 §5.2.4).</summary>
    public static byte EffectivePriority(byte basePriority, TrackingState s)
    {
        if (basePriority == ElectionConfig.OwnerPriority) return basePriority;
        int p = basePriority + s.Checks.Sum(Contribution);
        return (byte)Math.Clamp(p, 1, 254);
    }

    static int Contribution(TrackedCheck c) =>
        c.Weight > 0 && c.Health.Up ? c.Weight : c.Weight < 0 && !c.Health.Up ? c.Weight : 0;

    /// <summary>Why the router must be in FAULT (a tracked link down, a weight-0 check down), or null if it need not.</summary>
    public static string? FaultReason(TrackingState s)
    {
        var link = s.Interfaces.Where(kv => !kv.Value).Select(kv => kv.Key).Order().FirstOrDefault();
        if (link is not null) return $"tracked interface {link} is down";
        var check = s.Checks.FirstOrDefault(c => c.Weight == 0 && !c.Health.Up);
        return check is null ? null : $"tracked check {check.Name} failed";
    }
}
