using System.Text;
using Lb.Rules;

namespace Lb.Host.Caching;

/// <summary>
/// The file format of the disk store: a magic and version, the key (so a file is only ever read back for its
/// own key), then the item. Anything unreadable decodes as null and is treated as absent.
/// </summary>
public static class CacheCodec
{
    private const int Magic = 0x3143424C; // "LBC1" little-endian: bump the digit when the layout changes

    private const byte ResponseKind = 0;
    private const byte VariantsKind = 1;

    public static byte[] Encode(string key, CacheItem item)
    {
        using var buffer = new MemoryStream();
        using (var writer = new BinaryWriter(buffer, Encoding.UTF8, leaveOpen: true))
        {
            writer.Write(Magic);
            writer.Write(key);
            switch (item)
            {
                case CachedResponse response:
                    var stored = response.Stored;
                    writer.Write(ResponseKind);
                    writer.Write(stored.Response.Status);
                    writer.Write(stored.RequestTime.UtcTicks);
                    writer.Write(stored.ResponseTime.UtcTicks);
                    writer.Write(stored.Response.Headers.Length);
                    foreach (var (name, value) in stored.Response.Headers)
                    {
                        writer.Write(name);
                        writer.Write(value);
                    }
                    writer.Write(response.Body.Length);
                    writer.Write(response.Body);
                    break;
                case CachedVariants variants:
                    writer.Write(VariantsKind);
                    writer.Write(variants.Names.Length);
                    foreach (var name in variants.Names)
                        writer.Write(name);
                    break;
                default:
                    throw new ArgumentException($"unknown cache item {item.GetType().Name}", nameof(item));
            }
        }
        return buffer.ToArray();
    }

    /// <summary>The item stored in <paramref name="bytes"/> for <paramref name="key"/>, or null if the bytes are
    /// damaged, of another layout version, or hold another key (a hash collision of file names).</summary>
    public static CacheItem? Decode(byte[] bytes, string key)
    {
        try
        {
            using var reader = new BinaryReader(new MemoryStream(bytes, writable: false), Encoding.UTF8);
            if (reader.ReadInt32() != Magic || reader.ReadString() != key)
                return null;
            switch (reader.ReadByte())
            {
                case ResponseKind:
                    var status = reader.ReadInt32();
                    var requestTime = new DateTimeOffset(reader.ReadInt64(), TimeSpan.Zero);
                    var responseTime = new DateTimeOffset(reader.ReadInt64(), TimeSpan.Zero);
                    var headers = new Tuple<string, string>[CheckedCount(reader.ReadInt32(), bytes.Length)];
                    for (var i = 0; i < headers.Length; i++)
                        headers[i] = Tuple.Create(reader.ReadString(), reader.ReadString());
                    var length = CheckedCount(reader.ReadInt32(), bytes.Length);
                    var body = reader.ReadBytes(length);
                    if (body.Length != length || reader.BaseStream.Position != bytes.Length)
                        return null;
                    return new CachedResponse(new StoredResponse(new CacheResponse(status, headers), requestTime, responseTime), body);
                case VariantsKind:
                    var names = new string[CheckedCount(reader.ReadInt32(), bytes.Length)];
                    for (var i = 0; i < names.Length; i++)
                        names[i] = reader.ReadString();
                    return reader.BaseStream.Position == bytes.Length ? new CachedVariants(names) : null;
                default:
                    return null;
            }
        }
        catch (Exception e) when (e is EndOfStreamException or IOException or FormatException or ArgumentOutOfRangeException)
        {
            return null;
        }
    }

    private static int CheckedCount(int count, int available) =>
        count >= 0 && count <= available ? count : throw new FormatException("count out of range");
}
