namespace Lb.Host.Tests; public class Smoke { [Xunit.Fact] public void Builds() => Xunit.Assert.Equal(2, 1 + 1); }
