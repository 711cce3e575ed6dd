using System.Buffers;
using System.Text;
using Lb.Host.Serving;
using Xunit;

namespace Lb.Host.Tests.Serving;

/// <summary>
/// <see cref="Http1Framing"/> on its own: the heads it reads out of a pipelined HTTP/1.1 stream, the one byte it
/// overwrites in a bad Content-Length, and that neither depends on how the stream was cut into reads.
/// </summary>
public sealed class RequestHeadScannerTests
{
    private const string Body = "\r\nContent-Length: +5\r\nConnection: X-Body\r\n\r\n";

    /// <summary>Five pipelined requests: fixed body, chunked body with an extension and a trailer, bodiless GET with
    /// two Connection lines, leading empty lines, then a head with a long field name and a signed length in mixed case.</summary>
    private static readonly string Stream =
        $"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: {Body.Length}\r\nConnection: keep-alive, X-A\r\n\r\n{Body}" +
        $"POST /b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n{Body.Length:x};e=1\r\n{Body}\r\n0\r\nX-T: Content-Length: +5\r\n\r\n" +
        "GET /c HTTP/1.1\r\nHost: h\r\nconnection: close, X-C\r\nCONNECTION: X-D\r\n\r\n" +
        "\r\nGET /d HTTP/1.1\r\nHost: h\r\n\r\n" +
        "POST /e HTTP/1.1\r\nHost: h\r\nX-A-Rather-Long-Field-Name: Content-Length: +5\r\ncontent-LENGTH:  +5 \r\n\r\nhello";

    private static (byte[] Bytes, List<string[]> Heads) Scan(IEnumerable<int> cuts)
    {
        var bytes = Encoding.Latin1.GetBytes(Stream);
        var heads = new RequestHeads();
        var framing = new Http1Framing(heads);
        var at = 0;
        foreach (var cut in cuts.Append(bytes.Length))
        {
            // Each read is a slice of the same buffer, as the unconsumed bytes of a pipe stay where they are.
            framing.Feed(new ReadOnlySequence<byte>(bytes, at, cut - at));
            at = cut;
        }
        var taken = new List<string[]>();
        while (heads.Take() is { } values)
            taken.Add(values);
        return (bytes, taken);
    }

    [Fact]
    public void Each_head_gives_its_Connection_values_and_only_the_signed_length_is_overwritten()
    {
        var (bytes, heads) = Scan([]);
        Assert.Equal(5, heads.Count);
        Assert.Equal(["keep-alive, X-A"], heads[0]);
        Assert.Empty(heads[1]);
        Assert.Equal(["close, X-C", "X-D"], heads[2]);
        Assert.Empty(heads[3]);
        Assert.Empty(heads[4]);
        var expected = Stream.Replace("content-LENGTH:  +5 \r\n", "content-LENGTH:  x5 \r\n");
        Assert.Equal(expected, Encoding.Latin1.GetString(bytes));
    }

    [Fact]
    public void Cutting_the_stream_into_any_reads_changes_nothing()
    {
        var (whole, wholeHeads) = Scan([]);
        var random = new Random(20261208);
        for (var run = 0; run < 2000; run++)
        {
            var length = Encoding.Latin1.GetByteCount(Stream);
            var cuts = Enumerable.Range(0, random.Next(1, 12)).Select(_ => random.Next(0, length + 1)).Distinct().Order().ToArray();
            var (bytes, heads) = Scan(cuts);
            Assert.True(whole.AsSpan().SequenceEqual(bytes), $"cuts {string.Join(",", cuts)} changed other bytes");
            Assert.Equal(wholeHeads.Count, heads.Count);
            for (var i = 0; i < heads.Count; i++)
                Assert.Equal(wholeHeads[i], heads[i]);
        }
    }

    /// <summary>
    /// A chunk size of 2^63 (16 hex digits) overflowed the scanner's count into a negative number, and the body
    /// state then never advanced: one request held a thread forever (found in review). The scan must return.
    /// </summary>
    [Theory]
    [InlineData("8000000000000000")]
    [InlineData("ffffffffffffffffffff")]
    [InlineData("0800000000000000")]
    public async Task A_huge_chunk_size_never_spins(string size)
    {
        var bytes = Encoding.Latin1.GetBytes($"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n{size}\r\nxyz");
        var framing = new Http1Framing(new RequestHeads());
        // Bounded only for a broken scanner, which would never return: the scan itself takes microseconds.
        var scan = Task.Run(() => framing.Feed(new ReadOnlySequence<byte>(bytes)));
        var finished = await Task.WhenAny(scan, Task.Delay(TimeSpan.FromSeconds(30)));
        Assert.True(finished == scan, "the scanner did not return from a huge chunk size");
    }
}
