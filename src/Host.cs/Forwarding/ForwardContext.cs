using Lb.Rules;

namespace Lb.Host.Forwarding;

/// <summary>What the transformer needs about one forwarded request: the plan and the persistence outcome.</summary>
public sealed class ForwardContext(ForwardPlan plan, string[] backendCookies)
{
    public ForwardPlan Plan { get; } = plan;

    /// <summary>The Cookie header values for the backend: the persistence cookie removed (`indirect`).</summary>
    public string[] BackendCookies { get; } = backendCookies;

    /// <summary>The server the current attempt goes to.</summary>
    public int ServerIndex { get; set; }

    /// <summary>Set when this client needs a (new) persistence cookie: first visit, forged cookie, redispatch.</summary>
    public bool InsertCookie { get; set; }
}
