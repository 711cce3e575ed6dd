using Xunit;

namespace Lb.Vrrp.Tests;

/// <summary>
/// The failover tests' one allowance, <see cref="Handover.AssertNoRequestLostButAtTheArpMove"/>, must forgive exactly
/// the reset of the request in flight at the ARP move and nothing else.
/// </summary>
public sealed class HandoverTests
{
    const long Event = 1_000;

    static Handover Seen(params string[] results) => Handover.Measure(
        results.Select((r, i) => r is "lb1" or "lb2" ? new Probe(Event + i, r) : new Probe(Event + i, null, r)).ToList(),
        Event, "lb2");

    [Fact]
    public void A_clean_handover_loses_nothing() =>
        Seen("lb1", "lb1", "lb2", "lb2").AssertNoRequestLostButAtTheArpMove();

    [Fact]
    public void The_one_reset_between_the_old_masters_last_answer_and_the_new_masters_first_is_forgiven_and_reported()
    {
        var h = Seen("lb1", "ConnectionReset", "lb2");
        h.AssertNoRequestLostButAtTheArpMove();
        Assert.Equal(1, h.ResetAtTheArpMove);
        Assert.Contains("reset at the ARP move", h.TimingRow("x", "y"));
    }

    [Theory]
    [InlineData("lb1", "timeout", "lb2")]                           // not a reset: lb was not answering
    [InlineData("lb1", "ConnectionRefused", "lb2")]                 // a closed listener
    [InlineData("lb1", "ConnectionReset", "ConnectionReset", "lb2")] // two: more than one request in flight
    [InlineData("lb1", "ConnectionReset", "lb1", "lb2")]            // a reset while lb1 still held the VIP
    [InlineData("lb1", "lb2", "ConnectionReset", "lb2")]            // a reset on the new master
    [InlineData("lb1", "status 502", "lb2")]                       // an error answer
    [InlineData("lb1", "ConnectionReset", "lb1")]                   // no new master at all
    public void Any_other_failure_fails(params string[] results) =>
        Assert.ThrowsAny<Xunit.Sdk.XunitException>(() => Seen(results).AssertNoRequestLostButAtTheArpMove());
}
