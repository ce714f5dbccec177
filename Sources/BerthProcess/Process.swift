public enum ProcessPlaceholder {}
