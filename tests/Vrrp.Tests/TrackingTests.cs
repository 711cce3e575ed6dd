using FsCheck.Xunit;
using Xunit;

namespace Lb.Vrrp.Tests;

public class TrackingTests
{
    static RiseFall Run(RiseFall c, bool ok, int times)
    {
        for (int i = 0; i < times; i++) c = c.Record(ok);
        return c;
    }

    [Property]
    public bool From_fully_up_it_takes_exactly_fall_failures_to_go_down(byte r, byte f)
    {
        int rise = r % 10 + 1, fall = f % 10 + 1;
        var up = RiseFall.Create(rise, fall, up: true);
        return Run(up, false, fall - 1).Up && !Run(up, false, fall).Up;
    }

    [Property]
    public bool From_down_it_takes_exactly_rise_successes_to_go_up(byte r, byte f)
    {
        int rise = r % 10 + 1, fall = f % 10 + 1;
        var down = Run(RiseFall.Create(rise, fall, up: true), false, fall);
        return !Run(down, true, rise - 1).Up && Run(down, true, rise).Up;
    }

    [Property]
    public bool A_single_success_resets_a_falling_counter_to_fully_up(byte r, byte f)
    {
        int rise = r % 10 + 1, fall = f % 10 + 2;
        var c = Run(RiseFall.Create(rise, fall, up: true), false, fall - 1).Record(true);
        return Run(c, false, fall - 1).Up;
    }

    [Fact]
    public void A_new_check_is_one_success_away_from_up()
    {
        var c = RiseFall.Create(3, 2);
        Assert.False(c.Up);
        Assert.True(c.Record(true).Up);
    }

    static TrackingState State(params (string Name, int Weight, bool Up)[] checks) =>
        TrackingState.Create(checks.Select(c => new TrackedCheck(c.Name, c.Weight, RiseFall.Create(2, 2, c.Up))), ["eth1"]);

    [Theory]
    [InlineData(150, -60, true, 150)]
    [InlineData(150, -60, false, 90)]   // keepalived vector v2-weighted: 150 − 60
    [InlineData(101, 2, true, 103)]     // keepalived vector v2-seed: 101 + 2
    [InlineData(101, 2, false, 101)]
    [InlineData(250, 20, true, 254)]
    [InlineData(10, -60, false, 1)]
    [InlineData(255, -60, false, 255)]
    public void Weights_move_the_priority_like_keepalived(int basePrio, int weight, bool up, int expected) =>
        Assert.Equal(expected, Tracking.EffectivePriority((byte)basePrio, State(("chk", weight, up))));

    [Fact]
    public void A_down_interface_or_weight_0_check_is_a_fault_and_recovery_clears_it()
    {
        var s = State(("self", 2, true), ("chk", 0, true));
        Assert.Null(Tracking.FaultReason(s));
        var linkDown = Tracking.RecordInterface(s, "eth1", false);
        Assert.Equal("tracked interface eth1 is down", Tracking.FaultReason(linkDown));
        Assert.Null(Tracking.FaultReason(Tracking.RecordInterface(linkDown, "eth1", true)));
        Assert.Same(s, Tracking.RecordInterface(s, "eth9", false));
        var failed = Tracking.RecordCheck(Tracking.RecordCheck(s, 1, false), 1, false);
        Assert.Equal("tracked check chk failed", Tracking.FaultReason(failed));
    }
}
