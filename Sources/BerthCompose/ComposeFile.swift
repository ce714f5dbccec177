public enum ComposeFilePlaceholder {}
