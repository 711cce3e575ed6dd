namespace Lb.Host.Caching;

/// <summary>
/// The memory store: at most <c>capacity</c> bytes (<see cref="CacheItem.SizeWith"/>), the least recently used
/// entries evicted first. One lock guards the map and the recency list; each operation is O(1).
/// </summary>
public sealed class MemoryStore(long capacity)
{
    private sealed record Slot(string Key, CacheItem Item, long Size);

    private readonly Dictionary<string, LinkedListNode<Slot>> _map = new(StringComparer.Ordinal);
    private readonly LinkedList<Slot> _recency = new();
    private readonly Lock _lock = new();
    private long _bytes;

    public long Capacity { get; } = capacity;

    /// <summary>Bytes held now; never above <see cref="Capacity"/>.</summary>
    public long Bytes
    {
        get
        {
            lock (_lock)
                return _bytes;
        }
    }

    public int Count
    {
        get
        {
            lock (_lock)
                return _map.Count;
        }
    }

    public CacheItem? Get(string key)
    {
        lock (_lock)
        {
            if (!_map.TryGetValue(key, out var node))
                return null;
            _recency.Remove(node);
            _recency.AddFirst(node);
            return node.Value.Item;
        }
    }

    /// <summary>Stores the item, evicting the least recently used until it fits; false when it alone is too big.</summary>
    public bool Set(string key, CacheItem item)
    {
        var size = item.SizeWith(key);
        lock (_lock)
        {
            RemoveLocked(key);
            if (size > Capacity)
                return false;
            _map[key] = _recency.AddFirst(new Slot(key, item, size));
            _bytes += size;
            while (_bytes > Capacity && _recency.Last is { } oldest)
                RemoveLocked(oldest.Value.Key);
            return true;
        }
    }

    public void Remove(string key)
    {
        lock (_lock)
            RemoveLocked(key);
    }

    private void RemoveLocked(string key)
    {
        if (!_map.Remove(key, out var node))
            return;
        _recency.Remove(node);
        _bytes -= node.Value.Size;
    }
}
